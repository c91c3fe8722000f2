/**
 * From a lock entry to where each file's bytes are: the manifest by its pinned digest (the store,
 * else the registry by digest: `--frozen` never asks a tag), its layers by layout, each locked file
 * matched to its file layer (whose digest must be the file's sha256) or to the tar layer that holds it.
 * A lock that names a file no layer provides was edited by hand: exit 2, nothing installed.
 */
import type { LockedModel } from '../../project/lockfile.js';
import { ModelsError } from '../../util/errors.js';
import type { ArchiveContent, ContentContext } from '../adapter.js';
import { layersOfManifest } from './layers.js';
import { archiveName } from './files.js';
import { type ArchiveLayer, type LayoutName, archiveHolding, layoutOf } from './layouts/index.js';
import { manifestByDigest } from './manifest-fetch.js';
import { type OciReference, describeReference, parseReference } from './reference.js';

export interface OciContent {
  ref: OciReference;
  /** Every blob the model may need: file layers and archives. */
  digests: string[];
  archives: (ArchiveContent & { files: string[] })[];
}

function lockError(name: string, problem: string): ModelsError {
  return new ModelsError('E_LOCKFILE', `models.lock: models.${name} ${problem}`, {
    hint: `models.lock may have been edited by hand: restore it from version control, or run \`models lock --update ${name}\` (nothing was installed)`,
  });
}

export async function contentOf(ctx: ContentContext, name: string, locked: LockedModel): Promise<OciContent> {
  const pin = locked.pin ?? {};
  const digest = String(pin.digest);
  const ref = parseReference(String(pin.reference), `models.lock: models.${name}.source.reference`);
  const fetched = await manifestByDigest(ctx.session, ctx.store, ref, digest, ctx.signal);
  const where = `${describeReference({ ...ref, digest })}`;
  if (fetched.document.kind !== 'manifest') throw lockError(name, `pins ${digest}, which is an index, not a manifest`);
  const layout = (pin.layout as LayoutName | undefined) ?? layoutOf(fetched.document);
  const layers = await layersOfManifest(ctx.session, ctx.store, ref, fetched.document, layout, where, ctx.signal);
  const byPath = new Map(layers.filter((l) => l.kind === 'file').map((l) => [l.path, l]));
  const tars = layers.filter((l): l is ArchiveLayer => l.kind === 'archive');
  const filesOf = new Map<ArchiveLayer, string[]>();
  for (const file of locked.files) {
    const layer = byPath.get(file.path);
    if (layer) {
      if (`sha256:${file.sha256 ?? ''}` !== layer.digest || file.size !== layer.size) {
        throw lockError(name, `says ${file.path} is ${file.size} bytes with sha256 ${file.sha256 ?? '(none)'}, but manifest ${digest.slice(0, 19)} has layer ${layer.digest} of ${layer.size} bytes`);
      }
      continue;
    }
    const tar = archiveHolding(file.path, tars);
    if (!tar) throw lockError(name, `names ${file.path}, which no layer of manifest ${digest.slice(0, 19)} provides`);
    filesOf.set(tar, [...(filesOf.get(tar) ?? []), file.path]);
  }
  const archives = [...filesOf].map(([tar, files]) => ({ sha256: tar.digest.slice('sha256:'.length), size: tar.size, format: tar.format, strip: 0, name: `${where}: ${archiveName(tar)}`, files }));
  return { ref, digests: layers.map((l) => l.digest), archives };
}
