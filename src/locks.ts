/**
 * Cross-process locks (proper-lockfile: an atomic mkdir, refreshed while held, taken over when stale
 * so that a kill -9 never wedges the next run). Waiting longer than the timeout exits 7.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ModelsError, storageError } from './errors.js';

export type Release = () => Promise<void>;

export async function acquireLock(lockPath: string, what: string, timeoutMs: number): Promise<Release> {
  const { default: lockfile } = await import('proper-lockfile');
  try {
    await mkdir(dirname(lockPath), { recursive: true });
  } catch (error) {
    throw storageError(error, 'create the lock folder for', lockPath);
  }
  const interval = 200;
  try {
    const release = await lockfile.lock(lockPath, {
      realpath: false,
      lockfilePath: `${lockPath}.lock`,
      stale: 15_000,
      update: 5_000,
      retries: { retries: Math.max(0, Math.ceil(timeoutMs / interval)), factor: 1, minTimeout: interval, maxTimeout: interval },
      // A lock we lost (the machine stalled past `stale`) is not worth crashing over: the data
      // itself is protected by content hashes and atomic renames.
      onCompromised: () => undefined,
    });
    return async () => {
      await release().catch(() => undefined);
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') {
      throw new ModelsError('E_LOCK_TIMEOUT', `timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what} (lock ${lockPath}.lock)`, {
        hint: 'another models process is using it; wait for it to finish, or raise MODELS_LOCK_TIMEOUT (seconds)',
      });
    }
    throw storageError(error, 'lock', lockPath);
  }
}
