/**
 * The shared content-addressed store (the "cache"). One copy of every byte, kept as whole files:
 *
 *   v1/files/<aa>/<sha256>     verified file contents, read-only; installs hardlink (or reflink/copy) from here
 *   v1/chunks/<aa>/<sha256>    chunk pointers: where a chunk's bytes sit inside stored files, so a chunk
 *                              already held is never fetched again without keeping a second copy of it
 *   v1/manifests/<sha256>      verified manifest bytes (offline installs and verify need no registry)
 *   v1/manifests/<sha256>.json per-file sha256 learned while installing (for manifests that lack them)
 *   v1/partial/<manifest>/     in-progress downloads: one file per wanted file + a journal, for resume
 *   v1/locks/                  cross-process locks
 *
 * Why files and not chunks: writing every byte once into a chunk cache and again into the
 * destination doubles disk writes, the bottleneck here. Like pnpm's store, the destination is linked
 * to the stored file, so a cold install writes each byte once and a warm install writes none.
 */
import { constants } from 'node:fs';
import { chmod, copyFile, link, mkdir, open, readFile, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ModelsError, storageError } from './errors.js';
import { writeFileAtomic } from './fsutil.js';
import { isSha256 } from './hash.js';

export type LinkMode = 'auto' | 'hardlink' | 'reflink' | 'copy';

/** A run of bytes inside a stored (or partial) file. */
export interface Segment {
  path: string;
  offset: number;
  length: number;
}

/** How a chunk pointer names its bytes: by stored file hash, so it survives moves of the store. */
export interface StoredSegment {
  file: string;
  offset: number;
  length: number;
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MODELS_CACHE_DIR) return env.MODELS_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'xprim-models');
}

function fanout(dir: string, hash: string): string {
  if (!isSha256(hash)) throw new ModelsError('E_INTERNAL', `not a sha256: ${hash}`);
  return join(dir, hash.slice(0, 2), hash);
}

export class Store {
  readonly root: string;
  readonly dir: string;
  /** Fan-out folders known to exist: a model of thousands of files would mkdir each one thousands of times. */
  private readonly madeFolders = new Set<string>();

  constructor(root: string) {
    this.root = root;
    this.dir = join(root, 'v1');
  }

  objectPath(sha: string): string {
    return fanout(join(this.dir, 'files'), sha);
  }
  pointerPath(chunk: string): string {
    return fanout(join(this.dir, 'chunks'), chunk);
  }
  manifestPath(hash: string): string {
    if (!isSha256(hash)) throw new ModelsError('E_INTERNAL', `not a sha256: ${hash}`);
    return join(this.dir, 'manifests', hash);
  }
  partialDir(manifest: string): string {
    if (!isSha256(manifest)) throw new ModelsError('E_INTERNAL', `not a sha256: ${manifest}`);
    return join(this.dir, 'partial', manifest);
  }
  get lockDir(): string {
    return join(this.dir, 'locks');
  }

  async init(): Promise<void> {
    for (const sub of ['files', 'chunks', 'manifests', 'partial', 'locks']) {
      try {
        await mkdir(join(this.dir, sub), { recursive: true });
      } catch (error) {
        throw storageError(error, 'create the cache folder', join(this.dir, sub));
      }
    }
  }

  /** True when a stored file with this hash and size exists. */
  async hasObject(sha: string, size: number): Promise<boolean> {
    try {
      const info = await stat(this.objectPath(sha));
      return info.isFile() && info.size === size;
    } catch {
      return false;
    }
  }

  /** Move a verified file into the store, read-only. Another process may have stored it first: keep theirs. */
  async putObject(tempPath: string, sha: string): Promise<string> {
    const target = this.objectPath(sha);
    try {
      const folder = dirname(target);
      if (!this.madeFolders.has(folder)) {
        await mkdir(folder, { recursive: true });
        this.madeFolders.add(folder);
      }
      await chmod(tempPath, 0o444);
      await rename(tempPath, target);
    } catch (error) {
      throw storageError(error, 'store', target);
    }
    return target;
  }

  async removeObject(sha: string): Promise<void> {
    await rm(this.objectPath(sha), { force: true });
  }

  async readManifest(hash: string): Promise<Buffer | undefined> {
    try {
      const bytes = await readFile(this.manifestPath(hash));
      const now = new Date();
      await utimes(this.manifestPath(hash), now, now).catch(() => undefined); // last use, for LRU pruning
      return bytes;
    } catch {
      return undefined;
    }
  }

  async writeManifest(hash: string, bytes: Uint8Array): Promise<void> {
    const path = this.manifestPath(hash);
    try {
      // `models lock` writes here before any install has created the store's folders.
      await mkdir(dirname(path), { recursive: true });
      await writeFileAtomic(path, bytes, { durable: false }); // verified by hash whenever read
    } catch (error) {
      throw storageError(error, 'write', path);
    }
  }

  /** Per-file sha256 learned at install time, for manifests that do not carry them. */
  async readKnownShas(manifest: string): Promise<Record<string, string>> {
    try {
      const data = JSON.parse(await readFile(`${this.manifestPath(manifest)}.json`, 'utf8')) as { files?: Record<string, string> };
      const out: Record<string, string> = {};
      for (const [path, sha] of Object.entries(data.files ?? {})) if (isSha256(sha)) out[path] = sha;
      return out;
    } catch {
      return {};
    }
  }

  async writeKnownShas(manifest: string, files: Record<string, string>): Promise<void> {
    await writeFileAtomic(`${this.manifestPath(manifest)}.json`, `${JSON.stringify({ files }, null, 1)}\n`, { durable: false }).catch(() => undefined);
  }

  async readPointer(chunk: string): Promise<StoredSegment[] | undefined> {
    try {
      const data = JSON.parse(await readFile(this.pointerPath(chunk), 'utf8')) as { segments?: StoredSegment[] };
      const segments = data.segments;
      if (!Array.isArray(segments) || !segments.every((s) => isSha256(s.file) && Number.isSafeInteger(s.offset) && Number.isSafeInteger(s.length))) {
        return undefined;
      }
      return segments;
    } catch {
      return undefined;
    }
  }

  async writePointer(chunk: string, segments: StoredSegment[]): Promise<void> {
    const path = this.pointerPath(chunk);
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, JSON.stringify({ segments }), { durable: false }); // re-verified on use
  }

  async removePointer(chunk: string): Promise<void> {
    await unlink(this.pointerPath(chunk)).catch(() => undefined);
  }
}

/**
 * Place a stored file at `dest`. Hardlinks share the read-only inode (no bytes written); reflinks
 * share blocks on copy-on-write file systems; copies are the fallback across file systems.
 */
export async function linkFile(source: string, dest: string, mode: LinkMode): Promise<'hardlink' | 'reflink' | 'copy'> {
  if (mode === 'auto' || mode === 'hardlink') {
    try {
      await link(source, dest);
      return 'hardlink';
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (mode === 'hardlink' || !['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP'].includes(code ?? '')) {
        throw storageError(error, `hardlink ${source} to`, dest);
      }
    }
  }
  if (mode === 'reflink' || mode === 'auto') {
    try {
      await copyFile(source, dest, constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL);
      return 'reflink';
    } catch (error) {
      if (mode === 'reflink') throw storageError(error, `reflink ${source} to`, dest);
    }
  }
  try {
    await copyBytes(source, dest);
    return 'copy';
  } catch (error) {
    throw storageError(error, `copy ${source} to`, dest);
  }
}

/**
 * A plain copy into a new file. Not fs.copyFile: libuv truncates the destination first, and on ext4
 * a truncated file is flushed to disk on close (auto_da_alloc), which made copies 2.5x slower than cp.
 */
async function copyBytes(source: string, dest: string): Promise<void> {
  const input = await open(source, 'r');
  try {
    const output = await open(dest, 'wx', 0o644);
    try {
      const buffer = Buffer.allocUnsafe(1 << 20);
      for (let position = 0; ; ) {
        const { bytesRead } = await input.read(buffer, 0, buffer.byteLength, position);
        if (bytesRead === 0) break;
        let written = 0;
        while (written < bytesRead) written += (await output.write(buffer, written, bytesRead - written)).bytesWritten;
        position += bytesRead;
      }
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}
