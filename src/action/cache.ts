/**
 * The chunk cache carried between workflow runs with @actions/cache. Best effort: a cache service
 * that is missing (outside GitHub, GHES without it) or failing never fails the step — the install
 * then simply downloads.
 */
import { readFile } from 'node:fs/promises';
import * as cache from '@actions/cache';
import * as core from '@actions/core';
import { createHash } from 'node:crypto';

export const CACHE_PREFIX = 'xprim-models';

/** `xprim-models-<runner.os>-`: the restore-keys fallback, any earlier lock's cache on this OS. */
export function keyPrefix(env: NodeJS.ProcessEnv): string {
  return `${CACHE_PREFIX}-${env.RUNNER_OS || process.platform}-`;
}

/** Keyed on the lock's bytes: the lock pins every chunk, so the same lock means the same cache. */
export async function cacheKey(lockPath: string, env: NodeJS.ProcessEnv): Promise<string> {
  const bytes = await readFile(lockPath).catch(() => undefined);
  return keyPrefix(env) + (bytes ? createHash('sha256').update(bytes).digest('hex') : 'unlocked');
}

export function cacheAvailable(): boolean {
  return cache.isFeatureAvailable();
}

/** The key restored from, or undefined on a miss or failure. */
export async function restoreChunkCache(dir: string, primaryKey: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  try {
    return await cache.restoreCache([dir], primaryKey, [keyPrefix(env)]);
  } catch (error) {
    core.warning(`cache restore skipped: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

export async function saveChunkCache(dir: string, key: string): Promise<boolean> {
  try {
    await cache.saveCache([dir], key);
    return true;
  } catch (error) {
    // Typically another job of the same run saved this key first: nothing lost.
    core.warning(`cache save skipped: ${error instanceof Error ? error.message : String(error)}`);
    return false;
  }
}
