/**
 * What the shared cache holds (src/store/store.ts's layout), listed without following a symlink:
 * stored files and chunk pointers (fanned out by hash), manifests, partial downloads, and the temp
 * files of writers that were killed.
 */
import type { Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { removeDeadTempFiles } from '../../util/fsutil.js';
import { isSha256 } from '../../util/hash.js';
import { Store, defaultCacheDir } from '../../store/store.js';

export interface CacheLocation {
  cacheDir?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

export function openStore(options: CacheLocation = {}): Store {
  return new Store(options.cacheDir ?? defaultCacheDir(options.env ?? process.env));
}

export interface Entry {
  path: string;
  name: string;
  size: number;
  mtimeMs: number;
  nlink: number;
  /** A symlink planted where a stored file belongs: never followed, never trusted, removed by verify and prune. */
  link?: boolean;
}

/** The names in a real folder: a symlink in the cache is never followed (lstat), so nothing outside it is listed or deleted. */
export async function list(dir: string): Promise<string[]> {
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
export async function fanned(dir: string): Promise<Entry[]> {
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

export async function manifestEntries(store: Store): Promise<Entry[]> {
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
export async function removeDeadTemps(store: Store): Promise<number> {
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

export async function partialEntries(store: Store): Promise<Entry[]> {
  const dir = join(store.dir, 'partial');
  const out: Entry[] = [];
  for (const name of await list(dir)) {
    const { bytes, newestMs } = await treeStats(join(dir, name));
    out.push({ path: join(dir, name), name, size: bytes, mtimeMs: newestMs, nlink: 1 });
  }
  return out;
}

