/**
 * `models cache verify`: re-hash every stored file, chunk pointer and manifest under the cache lock,
 * and remove each one whose bytes do not match its name (it is fetched again when needed).
 */
import { readFile, rm, stat, unlink } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { hashSegments } from '../../fetch/fetch.js';
import type { Store } from '../../store/store.js';
import { abortError } from '../../util/errors.js';
import { sha256, sha256File } from '../../util/hash.js';
import { type CacheLocation, type Entry, fanned, manifestEntries, openStore } from './entries.js';
import { lockCache } from './lock.js';

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

/** What the checks found so far. */
interface Tally {
  bytesHashed: number;
  removed: CacheProblem[];
}

/** Re-hash every stored file, chunk and manifest; remove the ones whose bytes do not match their name. */
export async function verifyCache(options: CacheVerifyOptions = {}): Promise<CacheVerifyResult> {
  const started = performance.now();
  const store = openStore(options);
  const { default: pLimit } = await import('p-limit');
  const limit = pLimit(options.concurrency ?? Math.min(4, availableParallelism()));
  const tally: Tally = { bytesHashed: 0, removed: [] };
  const exists = await stat(store.dir).then((i) => i.isDirectory(), () => false);
  if (!exists) return { location: store.root, checked: { files: 0, chunks: 0, manifests: 0 }, bytesHashed: 0, removed: tally.removed, durationMs: 0 };
  await store.assertNoSymlinks();
  const release = await lockCache(store, options);
  let checked = { files: 0, chunks: 0, manifests: 0 };
  try {
    const [files, pointers, manifests] = await Promise.all([fanned(join(store.dir, 'files')), fanned(join(store.dir, 'chunks')), manifestEntries(store)]);
    checked = { files: files.length, chunks: pointers.length, manifests: manifests.length };
    const total = files.length + pointers.length + manifests.length;
    let done = 0;
    const run = <T>(items: T[], check: (item: T) => Promise<void>) =>
      Promise.all(
        items.map((item) =>
          limit(async () => {
            if (options.signal?.aborted) throw abortError();
            await check(item);
            options.onProgress?.(++done, total);
          }),
        ),
      );
    await run(manifests, (m) => checkManifest(m, tally));
    // Files before pointers: a pointer into a removed file is then caught as unreadable.
    await run(files, (f) => checkStoredFile(f, tally));
    await run(pointers, (p) => checkPointer(store, p, tally));
  } finally {
    await release();
  }
  const removed = tally.removed.sort((a, b) => a.kind.localeCompare(b.kind) || a.hash.localeCompare(b.hash));
  return { location: store.root, checked, bytesHashed: tally.bytesHashed, removed, durationMs: Math.round(performance.now() - started) };
}

async function checkManifest(m: Entry, tally: Tally): Promise<void> {
  const bytes = m.link ? undefined : await readFile(m.path).catch(() => undefined);
  if (bytes) tally.bytesHashed += bytes.byteLength;
  if (bytes && sha256(bytes) === m.name) return;
  await rm(m.path, { force: true });
  await rm(`${m.path}.json`, { force: true });
  tally.removed.push({ kind: 'manifest', hash: m.name, reason: 'bytes do not match the name' });
}

async function checkStoredFile(f: Entry, tally: Tally): Promise<void> {
  const actual = f.link ? '' : await sha256File(f.path).catch(() => '');
  tally.bytesHashed += f.size;
  if (actual === f.name) return;
  await rm(f.path, { force: true }); // a symlink: only the link goes
  tally.removed.push({ kind: 'file', hash: f.name, reason: f.link ? 'a symlink, not a stored file' : actual ? `sha256 is ${actual}` : 'unreadable' });
}

/** A pointer is good when the bytes it points at hash to its name. */
async function checkPointer(store: Store, p: Entry, tally: Tally): Promise<void> {
  const segments = p.link ? undefined : await store.readPointer(p.name);
  let reason: string | undefined;
  if (!segments) reason = 'pointer is unreadable';
  else {
    const actual = await hashSegments(segments.map((s) => ({ path: store.objectPath(s.file), offset: s.offset, length: s.length }))).catch(() => '');
    tally.bytesHashed += segments.reduce((s, x) => s + x.length, 0);
    if (actual !== p.name) reason = actual ? `bytes hash to ${actual}` : 'its stored file is missing or short';
  }
  if (!reason) return;
  await unlink(p.path).catch(() => undefined);
  tally.removed.push({ kind: 'chunk', hash: p.name, reason });
}
