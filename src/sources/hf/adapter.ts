/**
 * `hf:` sources: a Hugging Face Hub repo (model, dataset or space) pinned to a commit, every
 * selected file to its sha256. `models lock` asks the Hub API (pin.ts); install needs the lock alone
 * and fetches resolve URLs (content.ts); `outdated` asks whether the revision moved (check.ts).
 */
import type { HfSpec, ModelEntry } from '../../project/config.js';
import { type LockedModel, entrySpecHash } from '../../project/lockfile.js';
import { contentKey, describePin } from '../../project/pins.js';
import { ModelsError } from '../../util/errors.js';
import type { CheckResult, ContentContext, ModelContent, SourceAdapter, SourceContext } from '../adapter.js';
import { checkRepo } from './check.js';
import { hubContent } from './content.js';
import { pinRepo } from './pin.js';

function specOf(entry: ModelEntry): HfSpec {
  if (entry.source?.kind !== 'hf') throw new ModelsError('E_INTERNAL', `${entry.name}: not an hf: entry`);
  return entry.source;
}

async function resolve(ctx: SourceContext, entry: ModelEntry, previous?: LockedModel): Promise<LockedModel> {
  const { pin, files } = await pinRepo(ctx, specOf(entry), previous?.kind === 'hf' ? previous.files : []);
  return {
    spec: entrySpecHash(entry),
    kind: 'hf',
    ...describePin('hf', pin),
    manifest: contentKey('hf', pin, files),
    size: files.reduce((sum, f) => sum + f.size, 0),
    files,
    pin,
  };
}

function content(ctx: ContentContext, _entry: ModelEntry | undefined, locked: LockedModel): Promise<ModelContent> {
  return hubContent(ctx, locked);
}

function check(ctx: SourceContext, entry: ModelEntry, locked: LockedModel): Promise<CheckResult> {
  return checkRepo(ctx, entry.name, specOf(entry), locked);
}

export const hfSource: SourceAdapter = { kind: 'hf', resolve, content, check };
