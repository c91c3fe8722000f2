/**
 * One chunk on its way into the mirror: streamed into a temp file in data/ while it is hashed, and
 * renamed into place only when its size and sha256 are the chunk's. Wrong bytes never land.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { storageError } from '../../util/errors.js';

function tempFor(dataDir: string, hash: string): string {
  return join(dataDir, `.${hash}.${process.pid}.${Math.random().toString(16).slice(2, 10)}.tmp`);
}

/** Streams bytes into a temp file while hashing; `commit` renames it into place if hash and size match. */
export class ChunkFile {
  private hasher = createHash('sha256');
  written = 0;
  private constructor(
    private readonly handle: FileHandle,
    readonly temp: string,
  ) {}

  static async create(dataDir: string, hash: string): Promise<ChunkFile> {
    const temp = tempFor(dataDir, hash);
    try {
      return new ChunkFile(await open(temp, 'wx', 0o644), temp);
    } catch (error) {
      throw storageError(error, 'create', temp);
    }
  }

  async write(part: Uint8Array, limit: number): Promise<void> {
    if (this.written + part.byteLength > limit) throw new ChunkMismatch(`more than the ${limit} bytes declared`);
    this.hasher.update(part);
    let done = 0;
    while (done < part.byteLength) {
      const { bytesWritten } = await this.handle.write(part, done, part.byteLength - done, this.written + done);
      done += bytesWritten;
    }
    this.written += part.byteLength;
  }

  /** True when committed; false (temp removed) when the bytes are not the chunk. */
  async commit(path: string, hash: string, size: number): Promise<boolean> {
    const ok = this.written === size && this.hasher.digest('hex') === hash;
    try {
      if (ok) await this.handle.sync();
      await this.handle.close();
      if (!ok) {
        await unlink(this.temp).catch(() => undefined);
        return false;
      }
      await rename(this.temp, path);
      return true;
    } catch (error) {
      await unlink(this.temp).catch(() => undefined);
      throw storageError(error, 'write', path);
    }
  }

  async discard(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await unlink(this.temp).catch(() => undefined);
  }
}

/** More bytes than the chunk has: the source serves something else. */
export class ChunkMismatch extends Error {}

