/** What one verify run shares: the store, the install state, the hashing pool and its limit, and the counters. */
import type { LimitFunction } from 'p-limit';
import { abortError } from '../../util/errors.js';
import { sha256File } from '../../util/hash.js';
import type { ModelEntry } from '../../project/config.js';
import type { LockedModel } from '../../project/lockfile.js';
import type { Project } from '../../project/project.js';
import type { ManifestLayout } from '../../registry/manifest.js';
import type { HashPool } from '../../store/file-hasher.js';
import type { Store } from '../../store/store.js';
import type { InstallState } from '../../install/state.js';
import type { VerifiedFile } from './types.js';

export interface VerifyContext {
  project: Project;
  store: Store;
  state: InstallState;
  pool: HashPool | undefined;
  limit: LimitFunction;
  signal: AbortSignal | undefined;
  count: (bytes: number) => void;
  /** The layout of a locked model, through its source (a manifest is fetched only when missing from the store). */
  loadLayout: (entry: ModelEntry, locked: LockedModel) => Promise<ManifestLayout>;
}

export interface FileTask {
  file: VerifiedFile;
  abs: string;
  expected: string | undefined;
  sizeOk: boolean;
  /** Every chunk of this (large) file matched its hash (verify/split.ts): no whole-file hash needed. */
  checkedByChunks?: boolean;
}

export async function hashFile(ctx: VerifyContext, path: string, size: number): Promise<string> {
  if (ctx.signal?.aborted) throw abortError();
  const digest = ctx.pool ? await ctx.pool.hash(path, size) : await sha256File(path);
  ctx.count(size);
  return digest;
}
