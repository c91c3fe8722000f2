/**
 * Per-file SHA-256 of files being assembled, computed while the download is still running: as soon
 * as a prefix of a file is complete (its chunks verified and written), that prefix is read back from
 * the page cache and hashed. Big installs do this on a worker thread, so the main thread's hashing of
 * incoming chunks and the file hashing run on two cores; small installs do it inline. Either way the
 * file's hash is ready moments after its last chunk lands, instead of costing a second full pass.
 */
import { createHash, type Hash } from 'node:crypto';
import { read } from 'node:fs';
import { open } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { HASH_READ_SIZE } from '../util/hash.js';

export interface FileHasher {
  /**
   * Start hashing a file, by path or by a descriptor the caller keeps open until `digest` resolves
   * (no second open: on a busy folder each open waits on the folder's lock). Returns an id.
   */
  open(file: string | number): number;
  /** Hash bytes [start, start + length) of the file: always called in order, without gaps. */
  feed(id: number, start: number, length: number): void;
  digest(id: number): Promise<string>;
  close(): Promise<void>;
}

// CommonJS source for an `eval` worker: it needs no file of its own, so the bundled Action works too.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const files = new Map();
const buffer = Buffer.allocUnsafe(${HASH_READ_SIZE});
function hashRange(fd, hash, start, length) {
  for (let position = start, left = length; left > 0; ) {
    const n = fs.readSync(fd, buffer, 0, Math.min(buffer.length, left), position);
    if (n <= 0) throw new Error('file is shorter than expected');
    hash.update(buffer.subarray(0, n));
    position += n;
    left -= n;
  }
}
parentPort.on('message', (m) => {
  const file = files.get(m.id);
  try {
    if (m.op === 'open') {
      const own = typeof m.file === 'string';
      files.set(m.id, { fd: own ? fs.openSync(m.file, 'r') : m.file, own, hash: createHash('sha256'), error: undefined });
    } else if (m.op === 'feed') {
      if (!file || file.error) return;
      hashRange(file.fd, file.hash, m.start, m.length);
    } else if (m.op === 'segments') {
      // A byte range over several files (a chunk), read and hashed in one go.
      const hash = createHash('sha256');
      for (const s of m.segments) {
        const fd = fs.openSync(s.path, 'r');
        try {
          hashRange(fd, hash, s.offset, s.length);
        } finally {
          fs.closeSync(fd);
        }
      }
      parentPort.postMessage({ id: m.id, digest: hash.digest('hex') });
    } else if (m.op === 'digest') {
      files.delete(m.id);
      if (file && file.own && file.fd !== undefined) fs.closeSync(file.fd);
      if (!file || file.error) parentPort.postMessage({ id: m.id, error: file ? file.error : 'unknown file' });
      else parentPort.postMessage({ id: m.id, digest: file.hash.digest('hex') });
    }
  } catch (error) {
    if (m.op === 'segments') parentPort.postMessage({ id: m.id, error: String(error && error.message ? error.message : error) });
    else if (file) file.error = String(error && error.message ? error.message : error);
    else if (m.op === 'open') files.set(m.id, { fd: undefined, hash: undefined, error: String(error && error.message) });
  }
});
`;

class WorkerHasher implements FileHasher {
  private readonly worker = new Worker(WORKER_SOURCE, { eval: true });
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (digest: string) => void; reject: (error: Error) => void }>();

  constructor() {
    this.worker.on('message', (m: { id: number; digest?: string; error?: string }) => {
      const waiter = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.digest) waiter?.resolve(m.digest);
      else waiter?.reject(new Error(m.error ?? 'hashing failed'));
    });
    this.worker.on('error', (error) => {
      for (const waiter of this.waiting.values()) waiter.reject(error);
      this.waiting.clear();
    });
  }
  open(file: string | number): number {
    const id = this.nextId++;
    this.worker.postMessage({ op: 'open', id, file });
    return id;
  }
  feed(id: number, start: number, length: number): void {
    if (length > 0) this.worker.postMessage({ op: 'feed', id, start, length });
  }
  digest(id: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ op: 'digest', id });
    });
  }
  /** The SHA-256 of a list of file ranges, in order. */
  hashSegments(segments: readonly { path: string; offset: number; length: number }[]): Promise<string> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ op: 'segments', id, segments });
    });
  }
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** The same on the main thread, for installs too small to be worth a thread. */
class InlineHasher implements FileHasher {
  private nextId = 1;
  private readonly files = new Map<number, { file: string | number; hash: Hash; queue: Promise<void>; error?: unknown }>();
  open(file: string | number): number {
    const id = this.nextId++;
    this.files.set(id, { file, hash: createHash('sha256'), queue: Promise.resolve() });
    return id;
  }
  /**
   * A failed read is kept for `digest`, never left as a rejected promise: a file abandoned mid-hash
   * (an interrupted install closes its descriptor) would otherwise end the process as an unhandled rejection.
   */
  feed(id: number, start: number, length: number): void {
    const entry = this.files.get(id);
    if (!entry || length === 0) return;
    entry.queue = entry.queue.then(async () => {
      if (entry.error) return;
      const own = typeof entry.file === 'string' ? await open(entry.file, 'r') : undefined;
      const fd = own ? own.fd : (entry.file as number);
      try {
        const buffer = Buffer.allocUnsafe(Math.min(length, HASH_READ_SIZE));
        let position = start;
        let left = length;
        while (left > 0) {
          const bytesRead = await readAt(fd, buffer, Math.min(buffer.length, left), position);
          if (bytesRead <= 0) throw new Error('file is shorter than expected');
          entry.hash.update(buffer.subarray(0, bytesRead));
          position += bytesRead;
          left -= bytesRead;
        }
      } finally {
        await own?.close();
      }
    }).catch((error: unknown) => {
      entry.error ??= error;
    });
  }
  async digest(id: number): Promise<string> {
    const file = this.files.get(id);
    if (!file) throw new Error('unknown file');
    this.files.delete(id);
    await file.queue;
    if (file.error) throw file.error;
    return file.hash.digest('hex');
  }
  async close(): Promise<void> {
    this.files.clear();
  }
}

function readAt(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, 0, length, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead))));
}

/** A worker thread pays off from a few tens of MiB; below that, its start-up costs more than it saves. */
export function createFileHasher(bytes: number): FileHasher {
  return bytes >= 32 * 1024 * 1024 ? new WorkerHasher() : new InlineHasher();
}

/**
 * Tracks which byte ranges of one file are complete and feeds the hasher the longest complete prefix.
 */
export class PrefixFeeder {
  private readonly done = new Map<number, number>();
  private fed = 0;
  private id: number | undefined;
  constructor(
    private readonly hasher: FileHasher,
    /** The file's open descriptor when there is one (kept open until `digest` resolves), else its path. */
    private readonly file: () => string | number,
    readonly size: number,
  ) {}

  /** Opened on first use: the file exists once a chunk has been written into it. */
  private handle(): number {
    this.id ??= this.hasher.open(this.file());
    return this.id;
  }

  complete(start: number, end: number): void {
    if (end <= start) return;
    this.done.set(start, Math.max(end, this.done.get(start) ?? 0));
    let next = this.done.get(this.fed);
    while (next !== undefined) {
      this.done.delete(this.fed);
      if (next > this.fed) this.hasher.feed(this.handle(), this.fed, next - this.fed);
      this.fed = Math.max(this.fed, next);
      next = this.done.get(this.fed);
    }
  }

  digest(): Promise<string> {
    if (this.fed !== this.size) return Promise.reject(new Error(`only ${this.fed} of ${this.size} bytes were hashed`));
    return this.hasher.digest(this.handle());
  }
}

/**
 * Whole-file SHA-256 on worker threads, one file per job, to the least busy thread: `verify` of many
 * files uses every core while the main thread only schedules.
 */
export class HashPool {
  private readonly workers: { hasher: WorkerHasher; queued: number }[];

  constructor(threads: number) {
    this.workers = Array.from({ length: Math.max(1, threads) }, () => ({ hasher: new WorkerHasher(), queued: 0 }));
  }

  get threads(): number {
    return this.workers.length;
  }

  async hash(path: string, size: number): Promise<string> {
    return this.onLeastBusy(size, (hasher) => {
      const id = hasher.open(path);
      hasher.feed(id, 0, size);
      return hasher.digest(id);
    });
  }

  /** The SHA-256 of byte ranges of files, in order (a chunk that may span files). */
  async hashSegments(segments: readonly { path: string; offset: number; length: number }[]): Promise<string> {
    const size = segments.reduce((sum, s) => sum + s.length, 0);
    return this.onLeastBusy(size, (hasher) => hasher.hashSegments(segments));
  }

  private async onLeastBusy(size: number, job: (hasher: WorkerHasher) => Promise<string>): Promise<string> {
    const worker = this.workers.reduce((a, b) => (b.queued < a.queued ? b : a));
    worker.queued += size + 1;
    try {
      return await job(worker.hasher);
    } finally {
      worker.queued -= size + 1;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.hasher.close()));
  }
}
