/** `models cache info`: what the shared cache holds, counted and sized. */
import { lstat, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type CacheLocation, type Entry, fanned, manifestEntries, openStore, partialEntries } from './entries.js';

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
