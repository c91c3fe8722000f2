/**
 * The shared cache (src/store/store.ts's layout), for `models cache info|verify|prune`.
 *
 * Pruning works by manifest: a manifest's last use is its file's mtime (Store.readManifest touches
 * it), manifests are evicted least recently used first, and then every stored file and chunk
 * pointer that no kept manifest references goes too. Installs hardlink stored files, so removing
 * one from the cache never breaks an install (it may free no disk space until the install goes).
 */
import type { Stats } from 'node:fs';
import { lstat, readFile, readdir, rm, stat, unlink } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ModelsError, abortError } from '../util/errors.js';
import { removeDeadTempFiles } from '../util/fsutil.js';
import { lockTimeoutFrom } from '../project/session.js';
import { hashSegments } from '../fetch/fetch.js';
import { isSha256, sha256, sha256File } from '../util/hash.js';
import { acquireLock } from '../store/locks.js';
import { type Manifest, validateManifest } from '../registry/manifest.js';
import { Store, defaultCacheDir } from '../store/store.js';

export interface CacheLocation {
  cacheDir?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

export interface CacheInfo {
  /** The cache folder (MODELS_CACHE_DIR or the default). */
  location: string;
  exists: boolean;
  /** Everything below it: stored files, manifests, pointers, partial downloads. */
  totalBytes: number;
  files: { count: number; bytes: number };
  chunks: number;
  manifests: { count: number; bytes: number };
  partial: { count: number; bytes: number };
}

export function openStore(options: CacheLocation = {}): Store {
  return new Store(options.cacheDir ?? defaultCacheDir(options.env ?? process.env));
}

interface Entry {
  path: string;
  name: string;
  size: number;
  mtimeMs: number;
  nlink: number;
  /** A symlink planted where a stored file belongs: never followed, never trusted, removed by verify and prune. */
  link?: boolean;
}

/** The names in a real folder: a symlink in the cache is never followed (lstat), so nothing outside it is listed or deleted. */
async function list(dir: string): Promise<string[]> {
  try {
    if (!(await lstat(dir)).isDirectory()) return [];
    return await readdir(dir);
  } catch {
    return [];
  }
}

function entryOf(path: string, name: string, info: Stats): Entry | undefined {
  if (info.isSymbolicLink()) return { path, name, size: 0, mtimeMs: info.mtimeMs, nlink: 1, link: true };
  return info.isFile() ? { path, name, size: info.size, mtimeMs: info.mtimeMs, nlink: info.nlink } : undefined;
}

/** The files of a fanned-out folder (<dir>/<aa>/<sha256>), with their lstat stats. */
async function fanned(dir: string): Promise<Entry[]> {
  const out: Entry[] = [];
  for (const sub of await list(dir)) {
    for (const name of await list(join(dir, sub))) {
      if (!isSha256(name)) continue;
      const path = join(dir, sub, name);
      const info = await lstat(path).catch(() => undefined);
      const entry = info && entryOf(path, name, info);
      if (entry) out.push(entry);
    }
  }
  return out;
}

async function manifestEntries(store: Store): Promise<Entry[]> {
  const dir = join(store.dir, 'manifests');
  const out: Entry[] = [];
  for (const name of await list(dir)) {
    if (!isSha256(name)) continue;
    const info = await lstat(join(dir, name)).catch(() => undefined);
    const entry = info && entryOf(join(dir, name), name, info);
    if (entry) out.push(entry);
  }
  return out;
}

/** Temp files of writers that were killed (kill -9, power cut): in manifests/ and every chunk fan-out folder. */
async function removeDeadTemps(store: Store): Promise<number> {
  const chunks = join(store.dir, 'chunks');
  const dirs = [join(store.dir, 'manifests'), ...(await list(chunks)).map((sub) => join(chunks, sub))];
  let removed = 0;
  for (const dir of dirs) if ((await lstat(dir).catch(() => undefined))?.isDirectory()) removed += (await removeDeadTempFiles(dir)).length;
  return removed;
}

/** Size of a folder tree and the newest mtime in it (lstat: a symlink counts as itself). */
async function treeStats(path: string): Promise<{ bytes: number; newestMs: number }> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return { bytes: 0, newestMs: 0 };
  if (!info.isDirectory()) return { bytes: info.size, newestMs: info.mtimeMs };
  let bytes = 0;
  let newestMs = info.mtimeMs;
  for (const name of await list(path)) {
    const sub = await treeStats(join(path, name));
    bytes += sub.bytes;
    newestMs = Math.max(newestMs, sub.newestMs);
  }
  return { bytes, newestMs };
}

async function partialEntries(store: Store): Promise<Entry[]> {
  const dir = join(store.dir, 'partial');
  const out: Entry[] = [];
  for (const name of await list(dir)) {
    const { bytes, newestMs } = await treeStats(join(dir, name));
    out.push({ path: join(dir, name), name, size: bytes, mtimeMs: newestMs, nlink: 1 });
  }
  return out;
}

export async function cacheInfo(options: CacheLocation = {}): Promise<CacheInfo> {
  const store = openStore(options);
  const exists = await stat(store.dir).then((i) => i.isDirectory(), () => false);
  const [files, chunks, manifests, partial] = await Promise.all([
    fanned(join(store.dir, 'files')),
    fanned(join(store.dir, 'chunks')),
    manifestEntries(store),
    partialEntries(store),
  ]);
  const sum = (entries: Entry[]) => entries.reduce((s, e) => s + e.size, 0);
  const sidecars = await Promise.all(manifests.map((m) => lstat(`${m.path}.json`).then((i) => i.size, () => 0)));
  const manifestBytes = sum(manifests) + sidecars.reduce((a, b) => a + b, 0);
  return {
    location: store.root,
    exists,
    totalBytes: sum(files) + sum(chunks) + manifestBytes + sum(partial),
    files: { count: files.length, bytes: sum(files) },
    chunks: chunks.length,
    manifests: { count: manifests.length, bytes: manifestBytes },
    partial: { count: partial.length, bytes: sum(partial) },
  };
}

// ---------------------------------------------------------------------------------------------
// verify

export interface CacheProblem {
  kind: 'file' | 'chunk' | 'manifest';
  hash: string;
  reason: string;
}

export interface CacheVerifyResult {
  location: string;
  checked: { files: number; chunks: number; manifests: number };
  bytesHashed: number;
  /** Corrupt entries, removed (they are fetched again when needed). */
  removed: CacheProblem[];
  durationMs: number;
}

export interface CacheVerifyOptions extends CacheLocation {
  concurrency?: number;
  signal?: AbortSignal;
  lockTimeoutMs?: number;
  onProgress?: (done: number, total: number) => void;
}

const DEFAULT_LOCK_TIMEOUT_MS = 60_000;

function lockTimeout(options: { lockTimeoutMs?: number | undefined; env?: NodeJS.ProcessEnv | undefined }): number {
  const env = options.env ?? process.env;
  return options.lockTimeoutMs ?? lockTimeoutFrom(env, DEFAULT_LOCK_TIMEOUT_MS);
}

/** Re-hash every stored file, chunk and manifest; remove the ones whose bytes do not match their name. */
export async function verifyCache(options: CacheVerifyOptions = {}): Promise<CacheVerifyResult> {
  const started = performance.now();
  const store = openStore(options);
  const { default: pLimit } = await import('p-limit');
  const limit = pLimit(options.concurrency ?? Math.min(4, availableParallelism()));
  const signal = options.signal;
  const removed: CacheProblem[] = [];
  let bytesHashed = 0;
  const exists = await stat(store.dir).then((i) => i.isDirectory(), () => false);
  if (!exists) return { location: store.root, checked: { files: 0, chunks: 0, manifests: 0 }, bytesHashed: 0, removed, durationMs: 0 };
  await store.assertNoSymlinks();
  const release = await acquireLock(join(store.lockDir, 'cache'), `the cache ${store.root}`, lockTimeout(options));
  let checked = { files: 0, chunks: 0, manifests: 0 };
  try {
    const [files, pointers, manifests] = await Promise.all([fanned(join(store.dir, 'files')), fanned(join(store.dir, 'chunks')), manifestEntries(store)]);
    checked = { files: files.length, chunks: pointers.length, manifests: manifests.length };
    const total = files.length + pointers.length + manifests.length;
    let done = 0;
    const tick = () => options.onProgress?.(++done, total);
    const run = <T>(items: T[], check: (item: T) => Promise<void>) =>
      Promise.all(
        items.map((item) =>
          limit(async () => {
            if (signal?.aborted) throw abortError();
            await check(item);
            tick();
          }),
        ),
      );
    await run(manifests, async (m) => {
      const bytes = m.link ? undefined : await readFile(m.path).catch(() => undefined);
      if (bytes) bytesHashed += bytes.byteLength;
      if (!bytes || sha256(bytes) !== m.name) {
        await rm(m.path, { force: true });
        await rm(`${m.path}.json`, { force: true });
        removed.push({ kind: 'manifest', hash: m.name, reason: 'bytes do not match the name' });
      }
    });
    // Files before pointers: a pointer into a removed file is then caught as unreadable.
    await run(files, async (f) => {
      const actual = f.link ? '' : await sha256File(f.path).catch(() => '');
      bytesHashed += f.size;
      if (actual !== f.name) {
        await rm(f.path, { force: true }); // a symlink: only the link goes
        removed.push({ kind: 'file', hash: f.name, reason: f.link ? 'a symlink, not a stored file' : actual ? `sha256 is ${actual}` : 'unreadable' });
      }
    });
    await run(pointers, async (p) => {
      const segments = p.link ? undefined : await store.readPointer(p.name);
      let reason: string | undefined;
      if (!segments) reason = 'pointer is unreadable';
      else {
        const actual = await hashSegments(segments.map((s) => ({ path: store.objectPath(s.file), offset: s.offset, length: s.length }))).catch(() => '');
        bytesHashed += segments.reduce((s, x) => s + x.length, 0);
        if (actual !== p.name) reason = actual ? `bytes hash to ${actual}` : 'its stored file is missing or short';
      }
      if (reason) {
        await unlink(p.path).catch(() => undefined);
        removed.push({ kind: 'chunk', hash: p.name, reason });
      }
    });
  } finally {
    await release();
  }
  removed.sort((a, b) => a.kind.localeCompare(b.kind) || a.hash.localeCompare(b.hash));
  return { location: store.root, checked, bytesHashed, removed, durationMs: Math.round(performance.now() - started) };
}

// ---------------------------------------------------------------------------------------------
// prune

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

interface ManifestRefs {
  entry: Entry;
  files: Set<string>;
  chunks: string[];
  sidecarBytes: number;
}

async function refsOf(store: Store, entry: Entry, pointerFiles: Map<string, string[]>): Promise<ManifestRefs> {
  const files = new Set<string>();
  let chunks: string[] = [];
  try {
    if (entry.link) throw new Error('a symlink, not a manifest');
    const manifest: Manifest = validateManifest(JSON.parse(await readFile(entry.path, 'utf8')), entry.name);
    chunks = manifest.chunks;
    for (const f of manifest.files) if (f.sha256) files.add(f.sha256);
    for (const sha of Object.values(await store.readKnownShas(entry.name))) files.add(sha);
    // Chunks shared with another model may point into that model's stored files.
    for (const chunk of chunks) for (const file of pointerFiles.get(chunk) ?? []) files.add(file);
  } catch {
    // unreadable: it holds nothing on to anything, and goes first
  }
  const sidecarBytes = await lstat(`${entry.path}.json`).then((i) => i.size, () => 0);
  return { entry, files, chunks, sidecarBytes };
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

export async function pruneCache(options: PruneOptions = {}): Promise<PruneResult> {
  const store = openStore(options);
  const dryRun = Boolean(options.dryRun);
  const now = options.now ?? Date.now();
  if (options.olderThanMs !== undefined && !(options.olderThanMs >= 0)) throw new ModelsError('E_USAGE', '--older-than must not be negative');
  if (options.maxSizeBytes !== undefined && !(options.maxSizeBytes >= 0)) throw new ModelsError('E_USAGE', '--max-size must not be negative');
  const exists = await stat(store.dir).then((i) => i.isDirectory(), () => false);
  const empty: PruneResult = { location: store.root, dryRun, manifests: [], files: 0, chunks: 0, partials: 0, sizeBefore: 0, sizeAfter: 0, removedBytes: 0, freedBytes: 0, keptManifests: 0 };
  if (!exists) return empty;

  await store.assertNoSymlinks();
  let release: (() => Promise<void>) | undefined;
  if (!dryRun) {
    const timeoutMs = lockTimeout(options);
    release = await acquireLock(join(store.lockDir, 'cache'), `the cache ${store.root}`, timeoutMs);
    // Never delete under a running install or download.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const held = await otherLocksHeld(store);
      if (held.length === 0) break;
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
  try {
    if (!dryRun) await removeDeadTemps(store);
    const [files, pointers, manifestList, partials] = await Promise.all([
      fanned(join(store.dir, 'files')),
      fanned(join(store.dir, 'chunks')),
      manifestEntries(store),
      partialEntries(store),
    ]);
    const pointerFiles = new Map<string, string[]>();
    await Promise.all(pointers.map(async (p) => pointerFiles.set(p.name, ((await store.readPointer(p.name)) ?? []).map((s) => s.file))));
    const refs = await Promise.all(manifestList.map((m) => refsOf(store, m, pointerFiles)));
    // Least recently used first; ties broken by hash so that the order is stable.
    refs.sort((a, b) => a.entry.mtimeMs - b.entry.mtimeMs || a.entry.name.localeCompare(b.entry.name));

    const fileSize = new Map(files.map((f) => [f.name, f.size]));
    const pointerSize = new Map(pointers.map((p) => [p.name, p.size]));
    const partialSize = new Map(partials.map((p) => [p.name, p.size]));
    const fileRefs = new Map<string, number>();
    const chunkRefs = new Map<string, number>();
    for (const r of refs) {
      for (const f of r.files) fileRefs.set(f, (fileRefs.get(f) ?? 0) + 1);
      for (const c of new Set(r.chunks)) chunkRefs.set(c, (chunkRefs.get(c) ?? 0) + 1);
    }
    const manifestBytes = (r: ManifestRefs) => r.entry.size + r.sidecarBytes;
    const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    const sizeBefore = total(fileSize) + total(pointerSize) + refs.reduce((s, r) => s + manifestBytes(r), 0) + total(partialSize);
    // What stays if only the orphans (nothing holds on to them) go: the size --max-size is compared with.
    const known = new Set(refs.map((r) => r.entry.name));
    let size =
      sizeBefore -
      files.filter((f) => !fileRefs.has(f.name)).reduce((s, f) => s + f.size, 0) -
      pointers.filter((p) => !chunkRefs.has(p.name)).reduce((s, p) => s + p.size, 0) -
      partials.filter((p) => !known.has(p.name)).reduce((s, p) => s + p.size, 0);

    const evicted: { refs: ManifestRefs; bytes: number }[] = [];
    const evict = (r: ManifestRefs) => {
      let bytes = manifestBytes(r) + (partialSize.get(r.entry.name) ?? 0);
      const release = (counts: Map<string, number>, key: string, sizes: Map<string, number>) => {
        const left = (counts.get(key) ?? 1) - 1;
        counts.set(key, left);
        if (left === 0) bytes += sizes.get(key) ?? 0;
      };
      for (const f of r.files) release(fileRefs, f, fileSize);
      for (const c of new Set(r.chunks)) release(chunkRefs, c, pointerSize);
      size -= bytes;
      evicted.push({ refs: r, bytes });
    };
    const noCriteria = options.olderThanMs === undefined && options.maxSizeBytes === undefined;
    const cutoff = options.olderThanMs !== undefined ? now - options.olderThanMs : noCriteria ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
    const kept: ManifestRefs[] = [];
    for (const r of refs) {
      if (r.entry.mtimeMs < cutoff) evict(r);
      else kept.push(r);
    }
    if (options.maxSizeBytes !== undefined) {
      while (kept.length > 0 && size > options.maxSizeBytes) evict(kept.shift() as ManifestRefs);
    }

    const keptFiles = new Set<string>();
    const keptChunks = new Set<string>();
    for (const r of kept) {
      for (const f of r.files) keptFiles.add(f);
      for (const c of r.chunks) keptChunks.add(c);
    }
    const evictedHashes = new Set(evicted.map((e) => e.refs.entry.name));
    const goneFiles = files.filter((f) => !keptFiles.has(f.name));
    const goneFileNames = new Set(goneFiles.map((f) => f.name));
    const gonePointers = pointers.filter((p) => !keptChunks.has(p.name) || (pointerFiles.get(p.name) ?? []).some((f) => goneFileNames.has(f)));
    const goneCutoff = noCriteria ? Number.POSITIVE_INFINITY : options.olderThanMs !== undefined ? now - options.olderThanMs : Number.NEGATIVE_INFINITY;
    const goneOldPartials = partials.filter((p) => p.mtimeMs < goneCutoff || evictedHashes.has(p.name) || !manifestList.some((m) => m.name === p.name));

    const removedBytes =
      goneFiles.reduce((s, f) => s + f.size, 0) + gonePointers.reduce((s, p) => s + p.size, 0) + evicted.reduce((s, e) => s + manifestBytes(e.refs), 0) + goneOldPartials.reduce((s, p) => s + p.size, 0);
    const freedBytes = removedBytes - goneFiles.filter((f) => f.nlink > 1).reduce((s, f) => s + f.size, 0);

    if (!dryRun) {
      for (const e of evicted) {
        if (options.signal?.aborted) throw abortError();
        await rm(e.refs.entry.path, { force: true });
        await rm(`${e.refs.entry.path}.json`, { force: true });
      }
      // Pointers before the files they name, so that no pointer outlives its bytes.
      for (const p of gonePointers) await rm(p.path, { force: true });
      for (const f of goneFiles) await rm(f.path, { force: true });
      for (const p of goneOldPartials) await rm(p.path, { recursive: true, force: true });
    }
    return {
      location: store.root,
      dryRun,
      manifests: evicted.map((e) => ({ hash: e.refs.entry.name, lastUsed: new Date(e.refs.entry.mtimeMs).toISOString(), bytes: e.bytes })),
      files: goneFiles.length,
      chunks: gonePointers.length,
      partials: goneOldPartials.length,
      sizeBefore,
      sizeAfter: sizeBefore - removedBytes,
      removedBytes,
      freedBytes,
      keptManifests: kept.length,
    };
  } finally {
    await release?.();
  }
}
