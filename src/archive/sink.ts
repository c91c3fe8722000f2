/**
 * Where extracted entries go: files written into the staging folder (or, in a dry run, nowhere),
 * each hashed with SHA-256 and counted while it streams through, so an entry that holds more or
 * fewer bytes than it declares, or fails its CRC-32, is caught before it is used.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Transform, type TransformCallback, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { abortError, isModelsError, storageError } from '../util/errors.js';
import { refuseEntry } from './rules.js';

export interface ExtractedFile {
  /** POSIX path inside the destination folder. */
  path: string;
  size: number;
  sha256: string;
}

export interface FileExpectation {
  size: number;
  executable: boolean;
  /** The entry's CRC-32, when the format records one (zip). */
  crc32?: number;
}

const FILE_MODE = 0o644;
const EXEC_MODE = 0o755;
const DIR_MODE = 0o755;

/** Hashes, counts and (for zip) CRC-checks one entry's bytes on their way to the file. */
class EntryMeter extends Transform {
  readonly hash = createHash('sha256');
  private crc = 0;
  private bytes = 0;

  constructor(
    private readonly archive: string,
    private readonly path: string,
    private readonly expect: FileExpectation,
    private readonly onBytes: (n: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expect.size) {
      callback(refuseEntry(this.archive, this.path, `holds more bytes than its declared size of ${this.expect.size}`));
      return;
    }
    this.hash.update(chunk);
    if (this.expect.crc32 !== undefined) this.crc = crc32(chunk, this.crc);
    this.onBytes(chunk.length);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.bytes !== this.expect.size) {
      callback(refuseEntry(this.archive, this.path, `holds ${this.bytes} bytes but declares ${this.expect.size}`));
    } else if (this.expect.crc32 !== undefined && this.crc !== this.expect.crc32) {
      callback(refuseEntry(this.archive, this.path, 'fails its CRC-32 check (damaged data)'));
    } else {
      callback();
    }
  }
}

export interface SinkOptions {
  archive: string;
  /** Undefined for a dry run: entries are hashed and checked but nothing is written. */
  destDir: string | undefined;
  signal: AbortSignal | undefined;
  onProgress: ((bytes: number) => void) | undefined;
}

export class EntrySink {
  private readonly made = new Set<string>();
  private written = 0;

  constructor(private readonly options: SinkOptions) {}

  /** A folder entry (or a file's parent): created 0755, whatever the archive said. */
  async directory(path: string): Promise<void> {
    const dest = this.options.destDir;
    if (dest === undefined || path === '' || this.made.has(path)) return;
    const target = join(dest, ...path.split('/'));
    try {
      const first = await mkdir(target, { recursive: true, mode: DIR_MODE });
      if (first === undefined) {
        // Already there: only ever made by this extraction, but never follow a link someone left.
        if (!(await lstat(target)).isDirectory()) throw refuseEntry(this.options.archive, path, 'collides with a non-folder in the destination');
      } else {
        // Set the mode exactly (mkdir's is reduced by the umask) on every folder this call created.
        const segments = path.split('/');
        for (let n = relative(dest, first).split(/[\\/]/).length; n <= segments.length; n++) {
          await chmod(join(dest, ...segments.slice(0, n)), DIR_MODE);
        }
      }
    } catch (error) {
      throw storageError(error, 'create the folder', target);
    }
    this.made.add(path);
  }

  /** Stream one file entry through the meter into its file; returns its path, size and sha256. */
  async file(path: string, source: Readable, expect: FileExpectation): Promise<ExtractedFile> {
    const { archive, destDir, signal, onProgress } = this.options;
    const slash = path.lastIndexOf('/');
    if (slash > 0) await this.directory(path.slice(0, slash));
    const meter = new EntryMeter(archive, path, expect, (n) => {
      this.written += n;
      onProgress?.(this.written);
    });
    const mode = expect.executable ? EXEC_MODE : FILE_MODE;
    const target = destDir === undefined ? undefined : join(destDir, ...path.split('/'));
    // 'wx': never overwrite or follow anything already at the path.
    const out = target === undefined ? new Writable({ write: (_c, _e, done) => done() }) : createWriteStream(target, { flags: 'wx', mode });
    try {
      await pipeline(source, meter, out, signal ? { signal } : {});
      if (target !== undefined) await chmod(target, mode);
    } catch (error) {
      throw entryError(error, archive, path, target, signal);
    }
    return { path, size: expect.size, sha256: meter.hash.digest('hex') };
  }
}

/** Sort out why an entry's pipeline failed: our refusal, an abort, the disk, or damaged data. */
function entryError(error: unknown, archive: string, path: string, target: string | undefined, signal: AbortSignal | undefined) {
  if (isModelsError(error)) return error;
  if (signal?.aborted) return abortError();
  if (error instanceof Error && 'syscall' in error) return storageError(error, 'extract to', target ?? path);
  const detail = error instanceof Error ? error.message : String(error);
  return refuseEntry(archive, path, `cannot be read: ${detail}`);
}
