/**
 * Pin an hf: entry: the revision's commit, the repo's files at that commit chosen by `files:` and
 * `exclude:`, each with its size and sha256 (LFS: from the file list; git files: from their bytes,
 * fetched once). What the lock records, and what `outdated` compares.
 */
import type { HfSpec } from '../../project/config.js';
import type { LockedFile } from '../../project/lockfile.js';
import type { LockedPin } from '../../project/pins.js';
import { ModelsError } from '../../util/errors.js';
import { checkRelativePath } from '../../util/paths.js';
import type { SourceContext } from '../adapter.js';
import { listFiles, revisionCommit } from './api.js';
import { pinGitFiles } from './git-files.js';
import { type RepoRef, repoLabel } from './repo.js';
import { selectFiles } from './select.js';

export interface PinnedRepo {
  pin: LockedPin;
  files: LockedFile[];
}

export function refOfSpec(spec: HfSpec): RepoRef {
  return { repo: spec.repo, type: spec.repoType };
}

/** The files of `spec` at `commit` (the commit its revision names now when omitted). */
export async function pinRepo(ctx: SourceContext, spec: HfSpec, previous: LockedFile[] = [], commit?: string): Promise<PinnedRepo> {
  const ref = refOfSpec(spec);
  const label = repoLabel(ref);
  const at = commit ?? (await revisionCommit(ctx, ref, spec.revision));
  const all = await listFiles(ctx, ref, at);
  if (all.length === 0) throw new ModelsError('E_NOT_FOUND', `${label}@${spec.revision}: the repo has no files at ${at.slice(0, 12)}`, { hint: 'check the repo and revision in models.yaml' });
  const selected = selectFiles(all, spec.files, spec.exclude, `${label}@${spec.revision}`);
  for (const f of selected) {
    const problem = checkRelativePath(f.path);
    if (problem) {
      throw new ModelsError('E_MANIFEST', `${label}@${spec.revision}: the Hub lists ${JSON.stringify(f.path)}: ${problem}`, { hint: 'such a file cannot be installed safely: leave it out with exclude: in models.yaml' });
    }
  }
  const gitShas = await pinGitFiles(ctx, ref, at, selected, previous);
  const files = selected.map((f) => ({ path: f.path, size: f.size, sha256: f.lfs ?? (gitShas.get(f.path) as string) }));
  return { pin: { repo: spec.repo, type: spec.repoType, revision: spec.revision, commit: at }, files };
}

/** Paths whose size or sha256 differ between two pinned file lists (added and removed included). */
export function changedPaths(before: LockedFile[], after: LockedFile[]): string[] {
  const old = new Map(before.map((f) => [f.path, f]));
  const changed = after.filter((f) => {
    const was = old.get(f.path);
    return !was || was.size !== f.size || was.sha256 !== f.sha256;
  }).map((f) => f.path);
  const now = new Set(after.map((f) => f.path));
  return [...changed, ...before.filter((f) => !now.has(f.path)).map((f) => f.path)].sort();
}
