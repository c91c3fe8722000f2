/**
 * `models outdated` for hf: a 40-hex revision is a commit and never moves; a branch, tag or ref is
 * asked for its commit now, and when that moved, the selected files there are pinned again and
 * compared: `outdated` only when a selected file changed (old → new commit, short).
 */
import type { HfSpec } from '../../project/config.js';
import type { LockedModel } from '../../project/lockfile.js';
import { contentKey } from '../../project/pins.js';
import { isModelsError } from '../../util/errors.js';
import type { CheckResult, SourceContext } from '../adapter.js';
import { revisionCommit } from './api.js';
import { changedPaths, pinRepo, refOfSpec } from './pin.js';

const COMMIT = /^[0-9a-f]{40}$/;

export async function checkRepo(ctx: SourceContext, name: string, spec: HfSpec, locked: LockedModel): Promise<CheckResult> {
  const lockedCommit = String(locked.pin?.commit ?? '');
  if (COMMIT.test(spec.revision)) return { status: 'current', latest: { resolved: lockedCommit, manifest: locked.manifest } };
  let now;
  try {
    const commit = await revisionCommit(ctx, refOfSpec(spec), spec.revision);
    if (commit === lockedCommit) return { status: 'current', latest: { resolved: commit, manifest: locked.manifest } };
    now = await pinRepo(ctx, spec, locked.files, commit);
  } catch (error) {
    if (isModelsError(error) && error.code === 'E_NOT_FOUND') return { status: 'missing', detail: error.message };
    throw error;
  }
  const moved = `${spec.revision} moved ${lockedCommit.slice(0, 7)} → ${String(now.pin.commit).slice(0, 7)}`;
  const changed = changedPaths(locked.files, now.files);
  if (changed.length === 0) return { status: 'current', latest: { resolved: lockedCommit, manifest: locked.manifest }, detail: `${moved}; no selected file changed` };
  const shown = changed.slice(0, 5).join(', ') + (changed.length > 5 ? `, … (${changed.length} in all)` : '');
  return {
    status: 'outdated',
    latest: { resolved: String(now.pin.commit), manifest: contentKey('hf', now.pin, now.files) },
    detail: `${moved}: ${shown} changed; run \`models update ${name}\``,
  };
}
