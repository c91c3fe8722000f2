/**
 * `models cache prune`. A manifest's last use is its file's mtime (Store.readManifest touches it);
 * manifests are evicted least recently used first, and then every stored file and chunk pointer
 * that no kept manifest references goes too. Installs hardlink stored files, so removing one from
 * the cache never breaks an install (it may free no disk space until the install goes).
 *
 * The steps: check the options; lock the cache, alone (lockCacheAlone); list it (readContents);
 * decide (planPrune, in prune-plan.ts); remove (removePlanned), unless --dry-run.
 */
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Release } from '../../store/locks.js';
import type { Store } from '../../store/store.js';
import { ModelsError, abortError } from '../../util/errors.js';
import { type CacheLocation, fanned, manifestEntries, openStore, partialEntries, removeDeadTemps } from './entries.js';
import { lockCacheAlone } from './lock.js';
import { type CacheContents, type PrunePlan, planPrune, refsOf } from './prune-plan.js';

/** "30d", "12h", "90m", "45s", "2w", "1.5d"; a bare number is days. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/i.exec(String(text));
  if (!match) {
    throw new ModelsError('E_USAGE', `invalid duration "${text}"`, { hint: 'write e.g. 30d, 12h, 90m or 2w (s, m, h, d, w)' });
  }
  const unit = (match[2] ?? 'd').toLowerCase();
  const factor: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
  return Math.round(Number(match[1]) * (factor[unit] as number));
}

export interface PruneOptions extends CacheLocation {
  /** Remove what was last used longer ago than this. */
  olderThanMs?: number;
  /** Then evict least recently used manifests until the cache is at most this big. */
  maxSizeBytes?: number;
  /** With neither criterion, everything is removed. */
  dryRun?: boolean;
  /** For tests: "now". */
  now?: number;
  lockTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface PrunedManifest {
  hash: string;
  lastUsed: string;
  /** Bytes that go with it (files no kept manifest shares, the manifest itself). */
  bytes: number;
}

export interface PruneResult {
  location: string;
  dryRun: boolean;
  /** In eviction order: least recently used first. */
  manifests: PrunedManifest[];
  files: number;
  chunks: number;
  partials: number;
  sizeBefore: number;
  sizeAfter: number;
  /** Bytes removed from the cache. */
  removedBytes: number;
  /** Of those, bytes whose disk space is actually released (not hardlinked into an install). */
  freedBytes: number;
  keptManifests: number;
}

export async function pruneCache(options: PruneOptions = {}): Promise<PruneResult> {
  const store = openStore(options);
  const dryRun = Boolean(options.dryRun);
  // Ages count from the start of the command, not from when the lock came free.
  const now = options.now ?? Date.now();
  if (options.olderThanMs !== undefined && !(options.olderThanMs >= 0)) throw new ModelsError('E_USAGE', '--older-than must not be negative');
  if (options.maxSizeBytes !== undefined && !(options.maxSizeBytes >= 0)) throw new ModelsError('E_USAGE', '--max-size must not be negative');
  const exists = await stat(store.dir).then((i) => i.isDirectory(), () => false);
  if (!exists) return { location: store.root, dryRun, manifests: [], files: 0, chunks: 0, partials: 0, sizeBefore: 0, sizeAfter: 0, removedBytes: 0, freedBytes: 0, keptManifests: 0 };

  await store.assertNoSymlinks();
  // A dry run deletes nothing, so it needs no lock.
  const release: Release | undefined = dryRun ? undefined : await lockCacheAlone(store, options);
  try {
    if (!dryRun) await removeDeadTemps(store);
    const plan = planPrune(await readContents(store), { olderThanMs: options.olderThanMs, maxSizeBytes: options.maxSizeBytes, now });
    if (!dryRun) await removePlanned(plan, options.signal);
    return {
      location: store.root,
      dryRun,
      manifests: plan.evicted.map((e) => ({ hash: e.refs.entry.name, lastUsed: new Date(e.refs.entry.mtimeMs).toISOString(), bytes: e.bytes })),
      files: plan.goneFiles.length,
      chunks: plan.gonePointers.length,
      partials: plan.gonePartials.length,
      sizeBefore: plan.sizeBefore,
      sizeAfter: plan.sizeBefore - plan.removedBytes,
      removedBytes: plan.removedBytes,
      freedBytes: plan.freedBytes,
      keptManifests: plan.kept.length,
    };
  } finally {
    await release?.();
  }
}

async function readContents(store: Store): Promise<CacheContents> {
  const [files, pointers, manifests, partials] = await Promise.all([
    fanned(join(store.dir, 'files')),
    fanned(join(store.dir, 'chunks')),
    manifestEntries(store),
    partialEntries(store),
  ]);
  const pointerFiles = new Map<string, string[]>();
  await Promise.all(pointers.map(async (p) => pointerFiles.set(p.name, ((await store.readPointer(p.name)) ?? []).map((s) => s.file))));
  const refs = await Promise.all(manifests.map((m) => refsOf(store, m, pointerFiles)));
  // Least recently used first; ties broken by hash so that the order is stable.
  refs.sort((a, b) => a.entry.mtimeMs - b.entry.mtimeMs || a.entry.name.localeCompare(b.entry.name));
  return { files, pointers, manifests, partials, pointerFiles, refs };
}

async function removePlanned(plan: PrunePlan, signal: AbortSignal | undefined): Promise<void> {
  for (const e of plan.evicted) {
    if (signal?.aborted) throw abortError();
    await rm(e.refs.entry.path, { force: true });
    await rm(`${e.refs.entry.path}.json`, { force: true });
  }
  // Pointers before the files they name, so that no pointer outlives its bytes.
  for (const p of plan.gonePointers) await rm(p.path, { force: true });
  for (const f of plan.goneFiles) await rm(f.path, { force: true });
  for (const p of plan.gonePartials) await rm(p.path, { recursive: true, force: true });
}

