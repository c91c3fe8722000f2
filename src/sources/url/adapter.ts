/**
 * `url:` sources: one file, or one archive unpacked, over HTTPS. Pinned by the sha256 of the bytes
 * (given in models.yaml, or learned on first use); installed through the shared fetch engine as a
 * single object; `outdated` asks the server with a HEAD whether it now serves other bytes.
 */
import type { ModelEntry, UrlSpec } from '../../project/config.js';
import { type LockedModel, entrySpecHash } from '../../project/lockfile.js';
import { type LockedPin, contentKey, describePin } from '../../project/pins.js';
import { formatFromName } from '../../archive/format.js';
import { ModelsError } from '../../util/errors.js';
import type { CheckResult, ContentContext, ModelContent, SourceAdapter, SourceContext } from '../adapter.js';
import { extractedLayout, wholeFileLayout } from '../whole-files.js';
import { urlClient } from './client.js';
import { filesOf, pinObject } from './first-use.js';
import { headOf } from './head.js';

function specOf(entry: ModelEntry): UrlSpec {
  if (entry.source?.kind !== 'url') throw new ModelsError('E_INTERNAL', `${entry.name}: not a url: entry`);
  return entry.source;
}

/** `extract: auto` becomes the format the file name says, so the lock is explicit. */
function archiveFormat(entry: ModelEntry, spec: UrlSpec): 'zip' | 'tar' | 'tar.gz' | undefined {
  if (!spec.extract) return undefined;
  if (spec.extract === 'tgz') return 'tar.gz';
  if (spec.extract !== 'auto') return spec.extract;
  const named = formatFromName(spec.file);
  if (!named) {
    throw new ModelsError('E_CONFIG', `${entry.name}: extract: auto cannot tell the format of "${spec.file}" from its name`, { hint: 'say extract: zip, tar or tar.gz' });
  }
  return named;
}

async function resolve(ctx: SourceContext, entry: ModelEntry): Promise<LockedModel> {
  const spec = specOf(entry);
  const format = archiveFormat(entry, spec);
  const object = await pinObject(ctx, entry, spec);
  const files = await filesOf(ctx, { ...spec, ...(format ? { extract: format } : {}) }, object);
  const pin: LockedPin = { url: spec.url, sha256: object.sha256, size: object.size };
  if (format) {
    pin.extract = format;
    pin.file = spec.file;
    if (spec.strip > 0) pin.strip = spec.strip;
  }
  if (object.validator) pin[object.validator.startsWith('"') ? 'etag' : 'lastModified'] = object.validator;
  const manifest = contentKey('url', pin, files);
  const locked: LockedModel = { spec: entrySpecHash(entry), kind: 'url', ...describePin('url', pin), manifest, size: files.reduce((s, f) => s + f.size, 0), files, pin };
  if (object.firstUse) locked.note = `pinned on first use: sha256 ${object.sha256} (${object.size} bytes); add sha256: to models.yaml to check it on every lock`;
  return locked;
}

async function content(ctx: ContentContext, _entry: ModelEntry | undefined, locked: LockedModel): Promise<ModelContent> {
  const pin = locked.pin ?? {};
  const sha256 = String(pin.sha256);
  const client = urlClient(ctx.session, String(pin.url), sha256);
  if (pin.extract === undefined) return { layout: wholeFileLayout(locked.files, locked.manifest), client };
  return {
    layout: extractedLayout(locked.files, locked.manifest),
    client,
    archive: { sha256, size: Number(pin.size), format: pin.extract as 'zip' | 'tar' | 'tar.gz', strip: Number(pin.strip ?? 0), name: String(pin.file ?? 'archive') },
  };
}

async function check(ctx: SourceContext, entry: ModelEntry, locked: LockedModel): Promise<CheckResult> {
  const pin = locked.pin ?? {};
  const head = await headOf(ctx, String(pin.url), entry.name);
  if (!head) return { status: 'missing', detail: `${String(pin.url)} answers 404` };
  const differs: string[] = [];
  if (head.size !== undefined && head.size !== pin.size) differs.push(`size ${head.size} (locked ${String(pin.size)})`);
  if (head.etag !== undefined && pin.etag !== undefined && head.etag !== pin.etag) differs.push(`ETag ${head.etag} (locked ${String(pin.etag)})`);
  if (head.lastModified !== undefined && pin.lastModified !== undefined && head.lastModified !== pin.lastModified) differs.push(`Last-Modified ${head.lastModified} (locked ${String(pin.lastModified)})`);
  if (differs.length === 0) return { status: 'current' };
  return { status: 'changed', detail: `${String(pin.url)} now serves other bytes: ${differs.join(', ')}; run \`models lock --update ${entry.name}\` after checking the new file` };
}

export const urlSource: SourceAdapter = { kind: 'url', resolve, content, check };
