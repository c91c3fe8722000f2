/**
 * Cross-process locks (proper-lockfile: an atomic mkdir, refreshed while held, taken over when stale
 * so that a kill -9 never wedges the next run). Waiting longer than the timeout exits 7.
 */
import * as fs from 'node:fs';
import { mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { ModelsError, storageError } from '../util/errors.js';
import { debugLog } from '../util/log.js';

/**
 * Releases the lock; `waited` says whether another holder had to be waited for (its work may be done).
 * `assertHeld` throws E_LOCK_TIMEOUT once the lock has been lost (this process stalled past the
 * stale time and another took the lock over): call it right before a write only the holder may make.
 */
export type Release = (() => Promise<void>) & { waited: boolean; assertHeld: () => void };

/** How often a held lock is refreshed, and when an unrefreshed one counts as abandoned. */
export interface LockTiming {
  refreshMs: number;
  staleMs: number;
}

const LOCK_TIMING: LockTiming = { refreshMs: 5_000, staleMs: 15_000 };

export async function acquireLock(lockPath: string, what: string, timeoutMs: number, timing: LockTiming = LOCK_TIMING): Promise<Release> {
  const { default: lockfile } = await import('proper-lockfile');
  try {
    await mkdir(dirname(lockPath), { recursive: true });
  } catch (error) {
    throw storageError(error, 'create the lock folder for', lockPath);
  }
  const lockDir = `${lockPath}.lock`;
  const health: { lost?: Error } = {};
  try {
    const { release, waited } = await lockWhenFree(lockfile, lockPath, what, timeoutMs, timing, health);
    const assertHeld = (): void => {
      if (!health.lost) return;
      throw new ModelsError('E_LOCK_TIMEOUT', `lost the lock on ${what} (${lockDir}): ${health.lost.message}`, {
        hint: 'another process took the lock over while this one stalled; run the command again',
        cause: health.lost,
      });
    };
    return Object.assign(
      async () => {
        await release().catch(() => undefined);
      },
      { waited, assertHeld },
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') {
      throw new ModelsError('E_LOCK_TIMEOUT', `timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what} (lock ${lockPath}.lock)`, {
        hint: 'another models process is using it; wait for it to finish, or raise MODELS_LOCK_TIMEOUT (seconds)',
      });
    }
    throw storageError(error, 'lock', lockPath);
  }
}

/**
 * Try the lock every 200 ms until the deadline (then the ELOCKED error is thrown); once held, record
 * its owner. `health.lost` is set if the lock is later lost.
 */
async function lockWhenFree(
  lockfile: typeof import('proper-lockfile'),
  lockPath: string,
  what: string,
  timeoutMs: number,
  timing: LockTiming,
  health: { lost?: Error },
): Promise<{ release: () => Promise<void>; waited: boolean }> {
  const interval = 200;
  const lockDir = `${lockPath}.lock`;
  const deadline = Date.now() + timeoutMs;
  let waited = false;
  for (;;) {
    try {
      const release = await lockfile.lock(lockPath, {
        realpath: false,
        lockfilePath: lockDir,
        stale: timing.staleMs,
        update: timing.refreshMs,
        retries: 0,
        fs: lockFs,
        // A lock we lost (the machine stalled past `stale`) is not worth crashing over: the data
        // itself is protected by content hashes and atomic renames. A holder about to replace a
        // shared file (models.json) asks `assertHeld` first.
        onCompromised: (error) => {
          health.lost = error;
        },
      });
      await writeOwner(lockDir);
      if (waited) debugLog(`lock wait: got ${what} after ${Math.round(timeoutMs - (deadline - Date.now()))} ms`);
      return { release, waited };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
      if (!waited) debugLog(`lock wait: ${what} is locked (${lockDir}${await ownerOf(lockDir)}); waiting up to ${Math.round(timeoutMs / 1000)} s`);
      waited = true;
      // Its holder was killed (kill -9, power loss): take it over now rather than after `stale`.
      if (await breakIfOwnerDead(lockDir)) continue;
      if (Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(1, deadline - Date.now()))));
    }
  }
}

/**
 * Say who holds the lock (for takeover from a dead holder and for messages). Creating the file
 * changes the folder's mtime, which proper-lockfile takes as "compromised" at its next refresh and
 * then stops refreshing: put back the mtime it recorded.
 */
async function writeOwner(lockDir: string): Promise<void> {
  try {
    const { mtime } = await stat(lockDir);
    await writeFile(join(lockDir, 'owner'), `${process.pid} ${hostname()}\n`);
    await utimes(lockDir, mtime, mtime);
  } catch {
    // Without an owner file the lock still works; only takeover waits for `stale`.
  }
}

/** ", held by pid N on HOST", when the lock says. */
async function ownerOf(lockDir: string): Promise<string> {
  const owner = await readFile(join(lockDir, 'owner'), 'utf8').catch(() => '');
  const [pid, host] = owner.trim().split(' ');
  return pid ? `, held by pid ${pid}${host ? ` on ${host}` : ''}` : '';
}

/** True when the lock was held by a process of this machine that no longer exists, and was removed. */
async function breakIfOwnerDead(lockDir: string): Promise<boolean> {
  let owner: string;
  try {
    owner = await readFile(join(lockDir, 'owner'), 'utf8');
  } catch {
    return false; // just being created, or held by an older version: wait for `stale`
  }
  const [pidText, host] = owner.trim().split(' ');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') return false;
  }
  // Rename first: of several processes breaking the same dead lock, exactly one succeeds.
  const aside = `${lockDir}.dead-${process.pid}-${Date.now()}`;
  try {
    await rename(lockDir, aside);
  } catch {
    return true; // another process broke it first; try to lock again
  }
  // Between our read and our rename, another process may have broken it and locked anew: give that back.
  const moved = await readFile(join(aside, 'owner'), 'utf8').catch(() => '');
  if (moved !== owner) {
    await rename(aside, lockDir).catch(() => undefined);
    return false;
  }
  await rm(aside, { recursive: true, force: true }).catch(() => undefined);
  return true;
}

/** The lock folder holds an `owner` file, so removing it must be recursive. */
const lockFs = {
  ...fs,
  rmdir: (path: string, callback: (error: NodeJS.ErrnoException | null) => void) => fs.rm(path, { recursive: true, force: true }, callback),
  rmdirSync: (path: string) => fs.rmSync(path, { recursive: true, force: true }),
};
