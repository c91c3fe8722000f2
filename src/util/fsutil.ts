/**
 * Small file-system helpers shared by every writer: a file is either absent, or whole and durable.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { storageError } from './errors.js';

export interface WriteFileAtomicOptions {
  /** Permission bits for a new file (the umask applies). Default 0o666. */
  mode?: number;
  /**
   * fsync the file and its folder (default true). Caches that are re-checked on every use (chunk
   * pointers, manifests, which are verified by hash when read) skip it: losing one is harmless.
   */
  durable?: boolean;
}

/** A unique name in the same folder, so the final rename never crosses a file system. */
function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Our temp files carry the writer's pid: `.<name>.<pid>.<12 hex>.tmp` (tempPathFor). */
const TEMP_FILE = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/** Whether a process of this pid runs (EPERM: it does, as another user). */
export function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Temp files (real files, by lstat) in `dir` whose writer died: a kill -9 or power cut mid-write. */
export async function deadTempFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const match = TEMP_FILE.exec(name);
    if (!match || alive(Number(match[1]))) continue;
    if ((await lstat(join(dir, name)).catch(() => undefined))?.isFile()) found.push(join(dir, name));
  }
  return found;
}

export async function removeDeadTempFiles(dir: string): Promise<string[]> {
  const found = await deadTempFiles(dir);
  await Promise.all(found.map((path) => unlink(path).catch(() => undefined)));
  return found;
}

/** fsync a folder so a rename in it survives a power cut. Not possible everywhere (Windows): best-effort. */
export async function fsyncDir(path: string): Promise<void> {
  try {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // best-effort by design
  }
}

/**
 * Write `data` to `path` atomically: temp file in the same folder, write, fsync, rename, fsync the
 * folder. Readers see the old content or the new one, never a partial file. Failures throw a
 * storage ModelsError naming the path; the temp file is removed. `data` may be pieces of text
 * (written one after another), so a big document never has to exist as one string.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | Iterable<string>,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const temp = tempPathFor(path);
  let created = false;
  try {
    const handle = await open(temp, 'wx', options.mode ?? 0o666);
    created = true;
    try {
      await writeFile(handle, data);
      if (options.durable !== false) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    created = false;
  } catch (error) {
    if (created) await unlink(temp).catch(() => undefined);
    throw storageError(error, 'write', path);
  }
  if (options.durable !== false) await fsyncDir(dirname(path));
}

/** mkdir -p, as a storage ModelsError naming the path on failure. */
export async function ensureDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (error) {
    throw storageError(error, 'create the folder', path);
  }
}
