/**
 * Fetch the chunks a plan still needs straight into partial files (resumable through the journal),
 * finish each file as its last chunk lands (hash, verify, move into the store), and record where
 * every fetched chunk now lives in the store so it is never fetched again.
 */
import { rm } from 'node:fs/promises';
import { setMaxListeners } from 'node:events';
import { join } from 'node:path';
import { ModelsError, abortError, isModelsError, storageError } from '../util/errors.js';
import { type ChunkJob, type FetchEnv, Journal, PartialFile, fetchChunk, verifyWrittenChunk } from '../fetch/fetch.js';
import { PrefixFeeder } from '../store/file-hasher.js';
import { FS_CONCURRENCY, forEachLimited } from '../util/pool.js';
import { debugLog } from '../util/log.js';
import { type FileSpan, chunksOverlapping, filesOverlapping } from '../registry/manifest.js';
import type { Segment, StoredSegment } from '../store/store.js';
import type { AssembleEnv, ModelPlan } from './assemble.js';
import { isWholeObject, partsOfFile, splitLargeObjects } from './ranged-parts.js';

/** One model's fetch: the partial files, their hashers and the chunk jobs that fill them. */
interface Fetching {
  env: AssembleEnv;
  plan: ModelPlan;
  journal: Journal;
  /** Aborted by the caller's signal or by the first failure: stops every request in flight. */
  controller: AbortController;
  partials: Map<number, PartialFile>;
  feeders: Map<number, PrefixFeeder>;
  jobs: Map<number, ChunkJob>;
  /** Files that are exactly one chunk, with that chunk's (verified) hash. */
  wholeFiles: Map<number, string>;
  /** Whether chunks that only fill files of known sha256 are left to those hashes (see ChunkJob.checkedByFiles). */
  trustFileHashes: boolean;
  /** Files with such chunks: when one fails its hash, its chunks are checked one by one. */
  checkedFiles: Set<number>;
}

/** A file whose hash failed while some of its chunks were checked only by it: which chunk is bad is not known yet. */
class UncheckedFileMismatch extends Error {}

/**
 * One pass that leaves chunks to their files' hashes (one SHA-256 pass per byte); should a file
 * fail, a second pass re-checks every written chunk by its own hash (the journal's re-check after a
 * crash) and fetches the bad ones again, each hashed as it streams, with the usual retries.
 */
export async function fetchMissing(env: AssembleEnv, plan: ModelPlan): Promise<void> {
  try {
    await fetchPass(env, plan, true);
  } catch (error) {
    if (!(error instanceof UncheckedFileMismatch)) throw error;
    debugLog(`${plan.target.name}: ${error.message}; checking its chunks one by one`);
    await fetchPass(env, plan, false);
  }
}

async function fetchPass(env: AssembleEnv, plan: ModelPlan, trustFileHashes: boolean): Promise<void> {
  const wanted = plan.layout.files.filter((f) => plan.sources[f.index]?.kind === 'fetch');
  if (wanted.length === 0) return;
  const dir = await env.store.preparePartialDir(plan.target.manifest);
  const journal = await Journal.open(dir);
  const controller = new AbortController();
  // Every in-flight request and backoff listens on it: many more than the default warning threshold.
  setMaxListeners(0, controller.signal);
  const onAbort = () => controller.abort();
  env.signal?.addEventListener('abort', onAbort, { once: true });
  const f: Fetching = { env, plan, journal, controller, partials: new Map(), feeders: new Map(), jobs: new Map(), wholeFiles: new Map(), trustFileHashes, checkedFiles: new Set() };
  try {
    openPartials(f, wanted, dir);
    f.jobs = chunkJobs(f, wanted);
    await splitLargeObjects(f.jobs, env.client, env.rangeSize, plan.target.name, controller.signal);
    await recheckJournal(f);
    f.wholeFiles = wholeFileHashes(f);
    if (trustFileHashes) leaveChunksToFileHashes(f);
    countResumed(f);
    await fetchAndFinish(f);
    await writePointers(env, plan, [...f.jobs.values()].filter((job) => !job.range));
  } finally {
    env.signal?.removeEventListener('abort', onAbort);
    await Promise.all([...f.partials.values()].map((p) => p.close()));
    await journal.close();
  }
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
}

/** A partial file per wanted file (kept as it is when resuming), each with the hasher of its complete prefix. */
function openPartials(f: Fetching, wanted: FileSpan[], dir: string): void {
  for (const file of wanted) {
    const path = join(dir, `f${file.index}`);
    const partial = new PartialFile(file, path, !f.journal.resumed);
    f.partials.set(file.index, partial);
    f.feeders.set(file.index, new PrefixFeeder(f.env.hasher, () => partial.fd ?? path, file.size));
  }
}

/** Every chunk that holds a byte of a wanted file, with the partials it writes and where to read it back. */
function chunkJobs(f: Fetching, wanted: FileSpan[]): Map<number, ChunkJob> {
  const { layout } = f.plan;
  const jobs = new Map<number, ChunkJob>();
  for (const file of wanted) {
    for (const chunk of chunksOverlapping(layout, file.offset, file.size)) {
      if (jobs.has(chunk.index)) continue;
      const overlapping = filesOverlapping(layout, chunk);
      const targets = overlapping.map((o) => f.partials.get(o.index)).filter((p): p is PartialFile => p !== undefined);
      const segments: Segment[] = [];
      let readable = true;
      for (const o of overlapping) {
        const path = segmentOf(f, o);
        if (!path) readable = false;
        const from = Math.max(chunk.offset, o.offset);
        const to = Math.min(chunk.offset + chunk.size, o.offset + o.size);
        if (path) segments.push({ path, offset: from - o.offset, length: to - from });
      }
      jobs.set(chunk.index, { chunk, targets, segments: readable ? segments : undefined });
    }
  }
  return jobs;
}

/** Where a file's bytes can be read back from: its partial, its stored object, or the file adopted in place. */
function segmentOf(f: Fetching, file: FileSpan): string | undefined {
  const partial = f.partials.get(file.index);
  if (partial) return partial.path;
  const source = f.plan.sources[file.index];
  if (source?.kind === 'store') return f.env.store.objectPath(source.sha);
  if (source?.kind === 'adopt') return source.path;
  return undefined;
}

/**
 * After a crash the journal may claim bytes the disk never got: check them before trusting them.
 * After a file failed its hash (the second pass), a chunk that fails here was fetched bad: that
 * counts against its retries.
 */
async function recheckJournal(f: Fetching): Promise<void> {
  if (!f.journal.resumed) return;
  for (const job of f.jobs.values()) {
    if (!f.journal.done.has(job.chunk.index) || (await verifyWrittenChunk(job))) continue;
    await f.journal.forget(job.chunk.index);
    if (!f.trustFileHashes) job.mismatches = 1;
  }
}

/** A file that is exactly one chunk is verified by that chunk's hash: no second pass over its bytes. */
function wholeFileHashes(f: Fetching): Map<number, string> {
  const wholeFiles = new Map<number, string>();
  for (const job of f.jobs.values()) if (!job.range && isWholeObject(job)) wholeFiles.set(job.targets[0]?.span.index as number, job.chunk.hash);
  for (const index of wholeFiles.keys()) f.feeders.delete(index);
  return wholeFiles;
}

/** A chunk that only fills files of known sha256, each hashed as it completes, is checked by those hashes. */
function leaveChunksToFileHashes(f: Fetching): void {
  for (const job of f.jobs.values()) {
    if (job.range || isWholeObject(job) || job.targets.length === 0) continue;
    job.checkedByFiles = job.targets.every((t) => f.plan.shas[t.span.index] !== undefined && f.feeders.has(t.span.index));
    if (job.checkedByFiles) for (const t of job.targets) f.checkedFiles.add(t.span.index);
  }
}

/** Count done journal entries as progress an earlier run already made. */
function countResumed(f: Fetching): void {
  for (const job of f.jobs.values()) {
    if (!f.journal.done.has(job.chunk.index)) continue;
    f.env.onBytes(job.chunk.size, 'resumed');
    chunkLanded(f, job);
  }
}

/** A verified chunk completes a byte range of each file it writes into; complete prefixes get hashed. */
function chunkLanded(f: Fetching, job: ChunkJob): void {
  for (const t of job.targets) {
    const from = Math.max(job.chunk.offset, t.span.offset) - t.span.offset;
    const to = Math.min(job.chunk.offset + job.chunk.size, t.span.offset + t.span.size) - t.span.offset;
    f.feeders.get(t.span.index)?.complete(from, to);
  }
}

/** Fetch every chunk not yet done; a file is finished (hashed, moved into the store) as soon as its last chunk lands. */
async function fetchAndFinish(f: Fetching): Promise<void> {
  const { env, journal, controller } = f;
  const remaining = new Map<number, number>();
  for (const job of f.jobs.values()) {
    for (const t of job.targets) remaining.set(t.span.index, (remaining.get(t.span.index) ?? 0) + (journal.done.has(job.chunk.index) ? 0 : 1));
  }
  const failures: unknown[] = [];
  const fail = (error: unknown) => {
    failures.push(error);
    controller.abort();
  };
  // Handled at once: a file failing its hash while chunks are in flight stops the rest (exit 6),
  // rather than waiting unobserved (an unhandled rejection) until every chunk is in.
  const finishing: Promise<void>[] = [];
  const finish = (index: number) => finishing.push(finishOrForget(f, index).catch(fail));
  for (const [index, count] of remaining) if (count === 0) finish(index);
  const fetchEnv: FetchEnv = { client: env.client, store: env.store, rate: env.rate, signal: controller.signal, onBytes: env.onBytes, label: f.plan.target.name };
  // As many workers as the shared limit lets run: each queues one chunk at a time, so the queue
  // never holds a closure per chunk, while the limit still caps requests across parallel models.
  const todo = [...f.jobs.values()].filter((job) => !journal.done.has(job.chunk.index));
  await forEachLimited(todo, env.limit.concurrency, (job) =>
    env.limit(async () => {
      if (controller.signal.aborted) return;
      try {
        await fetchChunk(fetchEnv, job, journal);
        chunkLanded(f, job);
        for (const t of job.targets) {
          const left = (remaining.get(t.span.index) ?? 1) - 1;
          remaining.set(t.span.index, left);
          if (left === 0) finish(t.span.index);
        }
      } catch (error) {
        fail(error);
      }
    }),
  );
  await Promise.all(finishing);
  if (env.signal?.aborted) throw abortError();
  // The first real failure, not the aborts it caused in the other requests.
  const first = failures.find((e) => !(isModelsError(e) && e.code === 'E_ABORTED')) ?? failures[0];
  if (first) throw first;
}

async function finishOrForget(f: Fetching, index: number): Promise<void> {
  try {
    await finishFile(f.env, f.plan, f.partials.get(index) as PartialFile, f.feeders.get(index) ?? (f.wholeFiles.get(index) as string), f.checkedFiles.has(index));
  } catch (error) {
    // Parts have no hash of their own: a file that fails its hash is fetched whole again next time.
    for (const part of partsOfFile(f.jobs.values(), index)) await f.journal.forget(part.chunk.index).catch(() => undefined);
    throw error;
  }
}

/**
 * Verify a completed partial file against its sha256 (or learn it) and move it into the store.
 * `hashed`: the feeder hashing it, or the sha256 of the one chunk that is the whole file, verified.
 * `checksChunks`: some of its chunks were checked by this hash only; a mismatch keeps the file, so
 * the next pass can tell its good chunks from its bad ones.
 */
async function finishFile(env: AssembleEnv, plan: ModelPlan, partial: PartialFile, hashed: PrefixFeeder | string, checksChunks: boolean): Promise<void> {
  const { span } = partial;
  // No fsync per file (an fsync storm would dominate on a slow disk): after a crash the journal is
  // re-checked against the bytes on disk, and `models verify` re-hashes what was installed.
  let actual: string;
  try {
    // Hashed before it is closed: the hasher may read through its descriptor.
    actual = typeof hashed === 'string' ? hashed : await hashed.digest();
    await partial.close();
  } catch (error) {
    throw storageError(error, 'hash', partial.path);
  }
  const expected = plan.shas[span.index];
  if (expected && actual !== expected) {
    if (checksChunks) throw new UncheckedFileMismatch(`file ${span.path} has sha256 ${actual}, the manifest says ${expected}`);
    await rm(partial.path, { force: true });
    throw new ModelsError('E_INTEGRITY', `${plan.target.name}: file ${span.path} has sha256 ${actual}, the manifest says ${expected}`, {
      hint: 'run the install again; if it repeats, the registry publishes inconsistent data',
    });
  }
  plan.shas[span.index] = actual;
  await env.store.putObject(partial.path, actual, partial.createdReadOnly);
  plan.sources[span.index] = { kind: 'store', sha: actual };
}

/** Record, for every fetched chunk, where its bytes now live in the store: it will never be fetched again. */
async function writePointers(env: AssembleEnv, plan: ModelPlan, jobs: Iterable<ChunkJob>): Promise<void> {
  const { layout } = plan;
  await forEachLimited(jobs, FS_CONCURRENCY, async ({ chunk }) => {
    const segments: StoredSegment[] = [];
    for (const f of filesOverlapping(layout, chunk)) {
      const sha = plan.shas[f.index];
      if (!sha || plan.sources[f.index]?.kind !== 'store') return;
      const from = Math.max(chunk.offset, f.offset);
      const to = Math.min(chunk.offset + chunk.size, f.offset + f.size);
      segments.push({ file: sha, offset: from - f.offset, length: to - from });
    }
    await env.store.writePointer(chunk.hash, segments).catch(() => undefined);
  });
  const learned: Record<string, string> = {};
  for (const f of layout.files) if (!f.sha256 && plan.shas[f.index]) learned[f.path] = plan.shas[f.index] as string;
  if (Object.keys(learned).length > 0) await env.store.writeKnownShas(plan.target.manifest, learned);
}

