/**
 * The chunk engine: get one chunk's bytes (from a chunk pointer into the store, else from the
 * registry), hash them while streaming, and write them straight into the partial files they belong
 * to, at their offsets. Nothing is buffered beyond one read; nothing is read back on the happy path.
 *
 * Resume: a journal beside the partial files records every verified chunk, and every few MiB the
 * progress of a chunk in flight together with the server's validator, so a later run (after Ctrl-C,
 * kill -9 or power loss) fetches only the rest with Range + If-Range.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { constants } from 'node:fs';
import { type FileHandle, chmod, open, rm } from 'node:fs/promises';
import { ModelsError, abortError, isModelsError, storageError } from '../util/errors.js';
import { debugLog } from '../util/log.js';
import { HASH_READ_SIZE } from '../util/hash.js';
import { LowSpeedError, TransientError, describeNetworkError } from '../net/http.js';
import type { RegistryClient } from '../registry/client.js';
import type { OpenOptions, OpenedBody, RegistrySource } from '../registry/source.js';
import { backoffDelay, sleep } from '../registry/client.js';
import type { ChunkSpan, FileSpan } from '../registry/manifest.js';
import type { Segment, Store } from '../store/store.js';

/**
 * A wanted file being assembled: its place in the stream and its partial file, opened on first use
 * (a model of thousands of files must not hold thousands of descriptors, nor open them all up front).
 */
export class PartialFile {
  private opening: Promise<FileHandle> | undefined;
  /** The open descriptor, once opened (for the file hasher: no second open). */
  fd: number | undefined;
  constructor(
    readonly span: FileSpan,
    readonly path: string,
    /** True when no earlier run left bytes worth keeping: then any old file is simply truncated. */
    private readonly fresh: boolean,
  ) {}

  /**
   * A fresh partial is created read-only, as it will sit in the store (its descriptor still writes):
   * one chmod less per file. A partial an earlier run left is made writable before it is reopened.
   */
  get createdReadOnly(): boolean {
    return this.fresh;
  }

  handle(): Promise<FileHandle> {
    this.opening ??= (async () => {
      try {
        if (this.fresh) return this.opened(await openFresh(this.path));
        // Resuming: keep the bytes an interrupted run wrote; sparse up to the final size.
        await chmod(this.path, 0o644).catch(() => undefined);
        const handle = await open(this.path, constants.O_RDWR | constants.O_CREAT, 0o644);
        if ((await handle.stat()).size !== this.span.size) await handle.truncate(this.span.size);
        return this.opened(handle);
      } catch (error) {
        throw storageError(error, 'create', this.path);
      }
    })();
    return this.opening;
  }

  private opened(handle: FileHandle): FileHandle {
    this.fd = handle.fd;
    return handle;
  }

  async close(): Promise<void> {
    const opening = this.opening;
    this.opening = undefined;
    this.fd = undefined;
    const handle = await opening?.catch(() => undefined);
    await handle?.close().catch(() => undefined);
  }
}

/** Create (or truncate) a partial file, read-only from the start; a read-only leftover is replaced. */
async function openFresh(path: string): Promise<FileHandle> {
  const flags = constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC;
  try {
    return await open(path, flags, 0o444);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EACCES') throw error;
    await rm(path, { force: true });
    return await open(path, flags, 0o444);
  }
}

export interface ChunkJob {
  chunk: ChunkSpan;
  /** The partial files this chunk writes into (the parts of the chunk other files need). */
  targets: PartialFile[];
  /** Where every byte of this chunk can be read back once written (partials + stored files). */
  segments: Segment[] | undefined;
  /**
   * Set for one part of a large whole-file object fetched as concurrent ranges: the part starts
   * `start` bytes into the object `chunk.hash`. A part has no hash of its own; the file's hash
   * (computed in order as the prefix completes) verifies it.
   */
  range?: { start: number };
  /**
   * Set when every file this chunk writes into has a known sha256: those hashes check its bytes,
   * so it is not hashed on its own while streaming (one SHA-256 pass per byte, not two). Should a
   * file's hash fail, its chunks are checked by their own hashes from disk and the bad ones fetched
   * again (install/fetch-missing.ts).
   */
  checkedByFiles?: boolean;
  /** Failed checks already counted against this chunk's retries (its bytes failed a check from disk). */
  mismatches?: number;
}

/** A chunk hashed as it streams: not a part of an object, nor one its files' hashes check. */
function hashedAlone(job: ChunkJob): boolean {
  return !job.range && !job.checkedByFiles;
}

/** Where landed bytes came from: this run's network, the store, or an earlier, interrupted run. */
export type ByteSource = 'network' | 'cache' | 'resumed';

import { Journal } from './journal.js';
import type { RateLimiter } from './rate-limit.js';
import { sliceParts, writeAllAt } from './write-parts.js';

export { Journal };

export interface FetchEnv {
  client: RegistryClient;
  store: Store;
  rate?: RateLimiter | undefined;
  signal?: AbortSignal | undefined;
  /** Bytes of this chunk that arrived; `network` counts what crossed the wire, `resumed` what an earlier run left. */
  onBytes: (bytes: number, source: ByteSource) => void;
  label: string;
}

/**
 * Received bytes are written in batches of about this much, not one write per network read. 512 KiB,
 * not 1 MiB: less held per download in flight (peak RSS of a 1 GiB install 143 -> 129 MB, median of 6)
 * and the file hasher is fed sooner, at no cost in time (bench/run.mjs --serve, A/B in one session).
 */
const WRITE_BATCH = 512 * 1024;
/** …or of this many parts (a trickle of tiny reads), well under IOV_MAX. */
const MAX_PENDING_PARTS = 256;
/**
 * A chunk in flight records its progress after at least this many new bytes and this long since
 * its last record: a kill loses at most a fraction of a second of transfer, and a fast download
 * does not append a journal line per MiB.
 */
const PROGRESS_RECORD_BYTES = 1024 * 1024;
const PROGRESS_RECORD_MS = 200;

/** Hashing + writing state for one chunk, kept across retries so a retry can resume mid-chunk. */
class ChunkWriter {
  /** Bytes received and hashed (written, or waiting in `pending`). */
  position = 0;
  hasher: Hash = createHash('sha256');
  private lastRecorded = 0;
  /** 0: a chunk's first MiB is recorded at once (a kill soon after a part starts still keeps it). */
  private lastRecordedAt = 0;
  /** Received parts not yet written, kept as they came (no copy): written together in one writev. */
  private pending: Uint8Array[] = [];
  private pendingLength = 0;

  constructor(
    private readonly job: ChunkJob,
    private readonly journal: Journal,
  ) {}

  restart(): void {
    this.position = 0;
    this.hasher = createHash('sha256');
    this.lastRecorded = 0;
    this.pending = [];
    this.pendingLength = 0;
  }

  /** Accept bytes at the current position: hash now (a part is hashed with its file), write in batches. */
  async write(data: Uint8Array, validator: string | undefined): Promise<void> {
    const { chunk } = this.job;
    if (this.position + data.byteLength > chunk.size) {
      throw new ChunkMismatch(`more than the ${chunk.size} bytes declared`);
    }
    if (hashedAlone(this.job)) this.hasher.update(data);
    this.pending.push(data);
    this.pendingLength += data.byteLength;
    this.position += data.byteLength; // `position` always ends where `pending` ends
    if (this.pendingLength >= WRITE_BATCH || this.pending.length >= MAX_PENDING_PARTS) await this.flush();
    if (validator && this.job.segments && this.position - this.lastRecorded >= PROGRESS_RECORD_BYTES && Date.now() - this.lastRecordedAt >= PROGRESS_RECORD_MS) {
      await this.flush();
      this.lastRecorded = this.position;
      this.lastRecordedAt = Date.now();
      await this.journal.markProgress(chunk.index, this.position, validator);
    }
  }

  /** Write what is pending into every target it overlaps, at its offsets. */
  async flush(): Promise<void> {
    if (this.pendingLength === 0) return;
    const parts = this.pending;
    const start = this.job.chunk.offset + this.position - this.pendingLength;
    const end = start + this.pendingLength;
    for (const target of this.job.targets) {
      const from = Math.max(start, target.span.offset);
      const to = Math.min(end, target.span.offset + target.span.size);
      if (from >= to) continue;
      await writeAllAt(await target.handle(), sliceParts(parts, from - start, to - start), from - target.span.offset);
    }
    // Only once every target has them: after a failed write the parts stay pending (positional
    // writes, so writing them again is harmless), and `position` never counts bytes not on disk.
    this.pending = [];
    this.pendingLength = 0;
  }

  /** Seed the hasher with bytes already on disk (resume across runs). */
  async seedFromDisk(bytes: number): Promise<boolean> {
    const segments = this.job.segments;
    if (!segments) return false;
    this.restart();
    if (!hashedAlone(this.job)) {
      this.position = bytes;
      this.lastRecorded = bytes;
      return true;
    }
    try {
      for await (const part of readSegments(clip(segments, bytes))) this.hasher.update(part);
      this.position = bytes;
      this.lastRecorded = bytes;
      return true;
    } catch {
      this.restart();
      return false;
    }
  }
}

class ChunkMismatch extends Error {}

/** The first `bytes` bytes of a segment list. */
function clip(segments: Segment[], bytes: number): Segment[] {
  const out: Segment[] = [];
  let left = bytes;
  for (const s of segments) {
    if (left <= 0) break;
    out.push({ ...s, length: Math.min(s.length, left) });
    left -= s.length;
  }
  return out;
}

/** Stream the bytes of a list of segments, in order, with bounded memory. */
export async function* readSegments(segments: Segment[]): AsyncGenerator<Buffer> {
  for (const segment of segments) {
    if (segment.length === 0) continue;
    const stream = createReadStream(segment.path, { start: segment.offset, end: segment.offset + segment.length - 1, highWaterMark: HASH_READ_SIZE });
    let got = 0;
    for await (const part of stream) {
      got += (part as Buffer).byteLength;
      yield part as Buffer;
    }
    if (got !== segment.length) throw new Error(`${segment.path} is shorter than expected`);
  }
}

/** Hash the bytes of a segment list. */
export async function hashSegments(segments: Segment[]): Promise<string> {
  const hash = createHash('sha256');
  for await (const part of readSegments(segments)) hash.update(part);
  return hash.digest('hex');
}

/** Re-hash a chunk the journal says is done, from what is on disk (resume after a crash or power loss). */
export async function verifyWrittenChunk(job: ChunkJob): Promise<boolean> {
  if (!job.segments) return false;
  if (job.range) return true; // checked with its file's hash
  try {
    return (await hashSegments(job.segments)) === job.chunk.hash;
  } catch {
    return false;
  }
}

/** Copy a chunk from the store via its pointer. False when the pointer is missing or stale. */
async function fetchFromStore(env: FetchEnv, job: ChunkJob, writer: ChunkWriter): Promise<boolean> {
  const pointer = await env.store.readPointer(job.chunk.hash);
  if (!pointer) return false;
  writer.restart();
  try {
    const segments = pointer.map((s) => ({ path: env.store.objectPath(s.file), offset: s.offset, length: s.length }));
    for await (const part of readSegments(segments)) {
      if (env.signal?.aborted) throw abortError();
      await writer.write(part, undefined);
    }
    await writer.flush();
  } catch (error) {
    if (isModelsError(error) || isStorageFailure(error)) throw error;
    await env.store.removePointer(job.chunk.hash);
    return false;
  }
  // A chunk its files' hashes check is checked by them here too (a bad pointer then fails its file).
  if (writer.position === job.chunk.size && (!hashedAlone(job) || writer.hasher.digest('hex') === job.chunk.hash)) {
    debugLog(`cache hit: chunk ${job.chunk.hash.slice(0, 12)} of ${env.label} (${job.chunk.size} bytes, from stored files)`);
    env.onBytes(job.chunk.size, 'cache');
    return true;
  }
  await env.store.removePointer(job.chunk.hash);
  return false;
}

/**
 * Make one chunk's bytes land, verified, in its targets. Transient failures resume from the last
 * byte written (Range + If-Range); a chunk whose bytes do not match its hash is discarded and fetched
 * again up to `integrityRetries` times, then the install fails with exit 6.
 */
export async function fetchChunk(env: FetchEnv, job: ChunkJob, journal: Journal): Promise<void> {
  const { chunk } = job;
  if (journal.done.has(chunk.index)) return;
  const writer = new ChunkWriter(job, journal);
  try {
    if (!job.range && (await fetchFromStore(env, job, writer))) {
      await journal.markDone(chunk.index);
      return;
    }
  } catch (error) {
    throw storageError(error, 'read a cached chunk for', env.label);
  }

  const attempt: Attempt = { validator: undefined, seeded: 0, lastUrl: '' };
  const recorded = journal.progress.get(chunk.index);
  // Bytes of this chunk an earlier run wrote: progress already made, until the server says the object changed.
  if (recorded && recorded.bytes < chunk.size && (await writer.seedFromDisk(recorded.bytes))) {
    attempt.validator = recorded.validator;
    attempt.seeded = recorded.bytes;
    env.onBytes(attempt.seeded, 'resumed');
  } else writer.restart();

  const what = `chunk ${chunk.hash.slice(0, 12)} of ${env.label}`;
  let mismatches = job.mismatches ?? 0;
  if (mismatches > 0) await sleep(backoffDelay(mismatches - 1, env.client.policy), env.signal);
  for (;;) {
    try {
      // A mismatch is returned, not thrown: thrown, the registry client would take it for a network failure.
      const outcome = await env.client.request<true | ChunkMismatch>(what, (source) => attemptFrom(source, env, job, writer, attempt, what), env.signal);
      if (outcome instanceof ChunkMismatch) throw outcome;
      if (!hashedAlone(job) || writer.hasher.copy().digest('hex') === chunk.hash) {
        await journal.markDone(chunk.index);
        return;
      }
      throw new ChunkMismatch('bytes do not match the chunk hash');
    } catch (error) {
      if (env.signal?.aborted) throw abortError();
      if (!(error instanceof ChunkMismatch)) throw error;
      mismatches++;
      if (mismatches > env.client.policy.integrityRetries) {
        throw new ModelsError('E_INTEGRITY', `${what}: ${error.message} (${attempt.lastUrl}), ${mismatches} times`, {
          hint: 'the registry or a proxy keeps serving corrupt bytes; try another mirror or report it to the registry owner',
        });
      }
      writer.restart();
      attempt.validator = undefined;
      await sleep(backoffDelay(mismatches - 1, env.client.policy), env.signal);
    }
  }
}

/** What one chunk's attempts share: the server's validator, bytes seeded from an earlier run, the last URL. */
interface Attempt {
  validator: string | undefined;
  seeded: number;
  lastUrl: string;
}

/** One attempt against one source: undefined when it lacks the object, a mismatch, or true when every byte landed. */
async function attemptFrom(source: RegistrySource, env: FetchEnv, job: ChunkJob, writer: ChunkWriter, attempt: Attempt, what: string): Promise<true | ChunkMismatch | undefined> {
  const { chunk } = job;
  const opened = await source.open(`data/${chunk.hash}`, openOptions(job, writer.position, attempt.validator, env.signal));
  if (!opened) return undefined;
  attempt.lastUrl = opened.url;
  if (job.range && !opened.resumed) {
    // A 200 to a ranged request: the object changed (If-Range) or the server stopped honouring ranges.
    opened.destroy();
    throw new ModelsError('E_INTEGRITY', `${what}: ${opened.url} answered a range request with the whole object: it changed on the server, or ranges are not served consistently`, {
      hint: 'run the install again; if it repeats, the server does not serve ranges reliably (report it) or the file changed upstream',
    });
  }
  if (!opened.resumed) {
    writer.restart();
    if (attempt.seeded > 0) env.onBytes(-attempt.seeded, 'resumed');
    attempt.seeded = 0;
  }
  attempt.validator = opened.validator;
  if (opened.length !== undefined && writer.position + opened.length !== chunk.size) {
    // A complete answer of the wrong size (an HTML error page, another object): not worth reading.
    opened.destroy();
    return new ChunkMismatch(`the server sent ${writer.position + opened.length} bytes, the chunk has ${chunk.size}`);
  }
  return streamBody(env, job, writer, opened, attempt.validator);
}

/** Write the body as it arrives; a reset or stall keeps what arrived, for the next attempt to resume from. */
async function streamBody(env: FetchEnv, job: ChunkJob, writer: ChunkWriter, opened: OpenedBody, validator: string | undefined): Promise<true | ChunkMismatch> {
  const where = job.targets[0]?.path ?? env.label;
  const flush = () =>
    writer.flush().catch((flushError: unknown) => {
      throw storageError(flushError, 'write', where);
    });
  const before = writer.position;
  try {
    for await (const part of opened.body) {
      if (env.rate) await env.rate.take(part.byteLength, env.signal);
      await writer.write(part, validator);
      env.onBytes(part.byteLength, 'network');
    }
  } catch (error) {
    opened.destroy();
    if (error instanceof ChunkMismatch) return error;
    if (isModelsError(error) || env.signal?.aborted) throw error;
    if (isStorageFailure(error)) throw storageError(error, 'write', where);
    await flush();
    const failure = new TransientError(`${describeNetworkError(error)} after ${writer.position - before} bytes`, opened.url);
    failure.progressed = writer.position > before && validator !== undefined && !(error instanceof LowSpeedError);
    throw failure;
  }
  await flush();
  if (writer.position < job.chunk.size) {
    const failure = new TransientError(`body ended after ${writer.position} of ${job.chunk.size} bytes`, opened.url);
    failure.progressed = writer.position > before && validator !== undefined;
    throw failure;
  }
  return true;
}

/** Where this attempt starts: resume after `position` bytes (a part: always its own byte range). */
function openOptions(job: ChunkJob, position: number, validator: string | undefined, signal: AbortSignal | undefined): OpenOptions {
  const base = signal ? { signal } : {};
  if (job.range) {
    return { ...base, start: job.range.start + position, end: job.range.start + job.chunk.size - 1, ...(validator ? { validator } : {}) };
  }
  return { ...base, ...(position > 0 && validator ? { start: position, validator } : {}) };
}

function isStorageFailure(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'EIO';
}
