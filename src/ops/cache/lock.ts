/**
 * The cache lock that `cache verify` and `cache prune` hold while they delete. Prune also waits
 * until no install or download holds a lock of its own: it never deletes under a running one.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { lockTimeoutFrom } from '../../project/settings.js';
import { type Release, acquireLock } from '../../store/locks.js';
import type { Store } from '../../store/store.js';
import { ModelsError, abortError } from '../../util/errors.js';
import { list } from './entries.js';

const DEFAULT_LOCK_TIMEOUT_MS = 60_000;

export interface LockOptions {
  lockTimeoutMs?: number | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  signal?: AbortSignal | undefined;
}

function lockTimeout(options: LockOptions): number {
  const env = options.env ?? process.env;
  return options.lockTimeoutMs ?? lockTimeoutFrom(env, DEFAULT_LOCK_TIMEOUT_MS);
}

export function lockCache(store: Store, options: LockOptions): Promise<Release> {
  return acquireLock(join(store.lockDir, 'cache'), `the cache ${store.root}`, lockTimeout(options));
}

/** The cache lock, once every other lock in locks/ is free (within the same timeout); released again on failure. */
export async function lockCacheAlone(store: Store, options: LockOptions): Promise<Release> {
  const timeoutMs = lockTimeout(options);
  const release = await acquireLock(join(store.lockDir, 'cache'), `the cache ${store.root}`, timeoutMs);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const held = await otherLocksHeld(store);
    if (held.length === 0) return release;
    if (Date.now() >= deadline) {
      await release();
      throw new ModelsError('E_LOCK_TIMEOUT', `another models process is using the cache ${store.root} (locks: ${held.join(', ')})`, {
        hint: 'wait for it to finish, then prune again (or raise MODELS_LOCK_TIMEOUT, in seconds)',
      });
    }
    await new Promise((r) => setTimeout(r, 250));
    if (options.signal?.aborted) {
      await release();
      throw abortError();
    }
  }
}

/** Held locks in locks/ other than ours (proper-lockfile refreshes a held lock's mtime every few seconds). */
async function otherLocksHeld(store: Store): Promise<string[]> {
  const held: string[] = [];
  const now = Date.now();
  for (const name of await list(store.lockDir)) {
    if (!name.endsWith('.lock') || name === 'cache.lock') continue;
    const info = await stat(join(store.lockDir, name)).catch(() => undefined);
    if (info && now - info.mtimeMs < 15_000) held.push(name.slice(0, -'.lock'.length));
  }
  return held;
}
