/**
 * The objects a publish puts under data/: chunks and the manifest, each named by the sha256 of its
 * bytes. An object already in place with exactly those bytes is left alone; a damaged one is
 * rewritten, never trusted. Counts what it wrote, for the result and for "unchanged".
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Manifest, chunkSizes } from '../../registry/manifest.js';
import { storageError } from '../../util/errors.js';
import { writeFileAtomic } from '../../util/fsutil.js';
import { sha256File } from '../../util/hash.js';

/** Fixed key order and formatting: the same content always gives the same manifest hash. */
export function serializeManifest(manifest: Manifest): string {
  const ordered = {
    total_size: manifest.total_size,
    chunk_size: manifest.chunk_size,
    chunks: manifest.chunks,
    ...(manifest.chunk_sizes ? { chunk_sizes: manifest.chunk_sizes } : {}),
    files: manifest.files.map((f) => ({ path: f.path, size: f.size, ...(f.sha256 ? { sha256: f.sha256 } : {}) })),
  };
  return `${JSON.stringify(ordered, null, 1)}\n`;
}

/** A chunk file already in place with these exact bytes? */
async function chunkPresent(path: string, hash: string, size: number): Promise<boolean> {
  try {
    const info = await stat(path);
    if (!info.isFile() || info.size !== size) return false;
    return (await sha256File(path)) === hash;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw storageError(error, 'read', path);
  }
}

export class ObjectWriter {
  /** Chunk files this run wrote. */
  chunksWritten = 0;
  /** Bytes written: new chunks, plus the manifest when it was new. */
  bytesWritten = 0;

  constructor(private readonly dataDir: string) {}

  /** A chunk sink (streamChunks) that writes what is not already there. */
  readonly writeChunk = async (hash: string, bytes: Buffer): Promise<void> => {
    const path = join(this.dataDir, hash);
    if (await chunkPresent(path, hash, bytes.length)) return;
    await writeFileAtomic(path, bytes);
    this.chunksWritten += 1;
    this.bytesWritten += bytes.length;
  };

  /** Every chunk of the manifest is in place, intact (hashes them all). */
  async hasAllChunks(manifest: Manifest): Promise<boolean> {
    const sizes = chunkSizes(manifest);
    for (const [i, hash] of manifest.chunks.entries()) {
      if (!(await chunkPresent(join(this.dataDir, hash), hash, sizes[i] as number))) return false;
    }
    return true;
  }

  async writeManifest(text: string, hash: string): Promise<void> {
    const path = join(this.dataDir, hash);
    const onDisk = await readFile(path, 'utf8').catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw storageError(error, 'read', path);
    });
    if (onDisk === text) return;
    await writeFileAtomic(path, text);
    this.bytesWritten += Buffer.byteLength(text);
  }
}
