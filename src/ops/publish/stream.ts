/**
 * One pass over the source files, in order, as one byte stream: hash each file, find the chunk
 * boundaries with a cutter, hash each chunk, and hand every chunk to a sink that writes it while
 * the next chunk is read. Memory: two chunks (one for chunks above OVERLAP_MAX_CHUNK).
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { ManifestFile } from '../../registry/manifest.js';
import { ModelsError, storageError } from '../../util/errors.js';
import { sha256 } from '../../util/hash.js';
import type { Cutter } from '../chunker.js';
import type { PublishProgress } from '../publish.js';
import type { SourceFile } from './source.js';

/** Receives each chunk; the bytes are valid until the promise settles. */
export type WriteChunk = (hash: string, bytes: Buffer) => Promise<void>;

export interface StreamResult {
  chunks: string[];
  sizes: number[];
  files: ManifestFile[];
  totalSize: number;
}

/** Read size: a cut moves the bytes read past it to the other buffer, so keep reads modest. */
const READ_SIZE = 4 * 1024 * 1024;
/** Up to this chunk size a chunk is written while the next one is read (two buffers in memory). */
const OVERLAP_MAX_CHUNK = 64 * 1024 * 1024;

/**
 * The bytes of the chunk being read (`buffer[0, fill)`), and the write of the one before it. A cut
 * hands the chunk to the sink and carries the bytes read past the cut over to the other buffer.
 */
class ChunkBuffer {
  buffer: Buffer;
  fill = 0;
  readonly hashes: string[] = [];
  readonly sizes: number[] = [];
  private spare: Buffer | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    size: number,
    private readonly sink: WriteChunk,
  ) {
    this.buffer = Buffer.allocUnsafe(size);
    this.spare = size <= OVERLAP_MAX_CHUNK ? Buffer.allocUnsafe(size) : undefined;
  }

  /** Emit every chunk the cutter finds in what has been read so far. */
  async cutAll(cutter: Cutter): Promise<void> {
    for (let length = cutter.cut(this.buffer.subarray(0, this.fill)); length > 0; length = cutter.cut(this.buffer.subarray(0, this.fill))) {
      await this.emit(length);
    }
  }

  /** The remainder is the last chunk; resolves once every write has finished. */
  async end(): Promise<void> {
    if (this.fill > 0) await this.emit(this.fill);
    await this.writing;
  }

  private async emit(length: number): Promise<void> {
    const bytes = this.buffer.subarray(0, length);
    const hash = sha256(bytes);
    this.hashes.push(hash);
    this.sizes.push(length);
    if (!this.spare) {
      await this.sink(hash, bytes);
      this.buffer.copyWithin(0, length, this.fill);
    } else {
      await this.writing; // the spare buffer held the previous chunk until its write finished
      this.spare.set(this.buffer.subarray(length, this.fill));
      [this.buffer, this.spare] = [this.spare, this.buffer];
      this.writing = this.sink(hash, bytes);
      this.writing.catch(() => undefined); // awaited (and thrown) at the next chunk or the end
    }
    this.fill -= length;
  }
}

export async function streamChunks(
  files: SourceFile[],
  cutter: Cutter,
  sourceDir: string,
  sink: WriteChunk,
  onProgress?: (event: PublishProgress) => void,
): Promise<StreamResult> {
  const totalSize = files.reduce((sum, f) => sum + f.size, 0);
  const chunks = new ChunkBuffer(Math.min(cutter.maxChunk, Math.max(totalSize, 1)), sink);
  let done = 0;
  const manifestFiles: ManifestFile[] = [];
  for (const file of files) {
    const onRead = (n: number): void => {
      done += n;
      onProgress?.({ bytesDone: done, bytesTotal: totalSize, file: file.path });
    };
    const fileHash = await streamFile(file, join(sourceDir, file.path), chunks, cutter, onRead);
    manifestFiles.push({ path: file.path, size: file.size, sha256: fileHash });
  }
  await chunks.end();
  return { chunks: chunks.hashes, sizes: chunks.sizes, files: manifestFiles, totalSize };
}

/** Read one file into the stream, cutting as it goes; its sha256. E_USAGE when it changed size meanwhile. */
async function streamFile(file: SourceFile, shown: string, chunks: ChunkBuffer, cutter: Cutter, onRead: (n: number) => void): Promise<string> {
  const fileHash = createHash('sha256');
  let read = 0;
  let grew = false;
  let handle;
  try {
    handle = await open(file.readPath, 'r');
  } catch (error) {
    throw storageError(error, 'read', shown);
  }
  try {
    for (;;) {
      // Read one byte past the expected size to notice a file that grew while we read it.
      const want = Math.min(chunks.buffer.length - chunks.fill, READ_SIZE, file.size - read + 1);
      let n: number;
      try {
        ({ bytesRead: n } = await handle.read(chunks.buffer, chunks.fill, want, null));
      } catch (error) {
        throw storageError(error, 'read', shown);
      }
      if (n === 0) break;
      if (read + n > file.size) {
        grew = true;
        break;
      }
      fileHash.update(chunks.buffer.subarray(chunks.fill, chunks.fill + n));
      chunks.fill += n;
      read += n;
      onRead(n);
      await chunks.cutAll(cutter);
    }
  } finally {
    await handle.close();
  }
  if (grew || read !== file.size) {
    throw new ModelsError('E_USAGE', `${shown} changed while it was being published (expected ${file.size} bytes)`, {
      hint: 'wait until nothing writes to the source folder, then publish again',
    });
  }
  return fileHash.digest('hex');
}
