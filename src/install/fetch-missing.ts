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
import { type FileSpan, chunksOverlapping, filesOverlapping } from '../registry/manifest.js';
import type { Segment, StoredSegment } from '../store/store.js';
import type { AssembleEnv, ModelPlan } from './assemble.js';
import { isWholeObject, partsOfFile, splitLargeObjects } from './ranged-parts.js';

export async function fetchMissing(env: AssembleEnv, plan: ModelPlan): Promise<void> {
  const { layout, target } = plan;
  const wanted = layout.files.filter((f) => plan.sources[f.index]?.kind === 'fetch');
  if (wanted.length === 0) return;
  const dir = await env.store.preparePartialDir(target.manifest);
  const journal = await Journal.open(dir);
  const partials = new Map<number, PartialFile>();
  const feeders = new Map<number, PrefixFeeder>();
  const controller = new AbortController();
  // Every in-flight request and backoff listens on it: many more than the default warning threshold.
  setMaxListeners(0, controller.signal);
  const onAbort = () => controller.abort();
  env.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (const file of wanted) {
      const path = join(dir, `f${file.index}`);
      partials.set(file.index, new PartialFile(file, path, !journal.resumed));
      feeders.set(file.index, new PrefixFeeder(env.hasher, path, file.size));
    }
    // A verified chunk completes a byte range of each file it writes into; complete prefixes get hashed.
    const chunkLanded = (job: ChunkJob) => {
      for (const t of job.targets) {
        const from = Math.max(job.chunk.offset, t.span.offset) - t.span.offset;
        const to = Math.min(job.chunk.offset + job.chunk.size, t.span.offset + t.span.size) - t.span.offset;
        feeders.get(t.span.index)?.complete(from, to);
      }
    };
    const segmentOf = (file: FileSpan): string | undefined => {
      const partial = partials.get(file.index);
      if (partial) return partial.path;
      const source = plan.sources[file.index];
      if (source?.kind === 'store') return env.store.objectPath(source.sha);
      if (source?.kind === 'adopt') return source.path;
      return undefined;
    };
    // Every chunk that holds a byte of a wanted file, with the partials it writes and where to read it back.
    const jobs = new Map<number, ChunkJob>();
    for (const file of wanted) {
      for (const chunk of chunksOverlapping(layout, file.offset, file.size)) {
        if (jobs.has(chunk.index)) continue;
        const overlapping = filesOverlapping(layout, chunk);
        const targets = overlapping.map((f) => partials.get(f.index)).filter((p): p is PartialFile => p !== undefined);
        const segments: Segment[] = [];
        let readable = true;
        for (const f of overlapping) {
          const path = segmentOf(f);
          if (!path) readable = false;
          const from = Math.max(chunk.offset, f.offset);
          const to = Math.min(chunk.offset + chunk.size, f.offset + f.size);
          if (path) segments.push({ path, offset: from - f.offset, length: to - from });
        }
        jobs.set(chunk.index, { chunk, targets, segments: readable ? segments : undefined });
      }
    }
    await splitLargeObjects(jobs, env.client, env.rangeSize, target.name, controller.signal);
    // After a crash the journal may claim bytes the disk never got: check them before trusting them.
    if (journal.resumed) {
      for (const job of jobs.values()) {
        if (journal.done.has(job.chunk.index) && !(await verifyWrittenChunk(job))) await journal.forget(job.chunk.index);
      }
    }
    // A file that is exactly one chunk is verified by that chunk's hash: no second pass over its bytes.
    const wholeFiles = new Map<number, string>();
    for (const job of jobs.values()) if (!job.range && isWholeObject(job)) wholeFiles.set(job.targets[0]?.span.index as number, job.chunk.hash);
    for (const index of wholeFiles.keys()) feeders.delete(index);
    const fetchEnv: FetchEnv = { client: env.client, store: env.store, rate: env.rate, signal: controller.signal, onBytes: env.onBytes, label: target.name };
    // Count done journal entries as progress an earlier run already made.
    for (const job of jobs.values()) {
      if (!journal.done.has(job.chunk.index)) continue;
      env.onBytes(job.chunk.size, 'resumed');
      chunkLanded(job);
    }

    // A file is finished (hashed, moved into the store) as soon as its last chunk lands.
    const remaining = new Map<number, number>();
    for (const job of jobs.values()) {
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
    const finish = (index: number) =>
      finishing.push(
        finishFile(env, plan, partials.get(index) as PartialFile, feeders.get(index) ?? wholeFiles.get(index) as string).catch(async (error: unknown) => {
          // Parts have no hash of their own: a file that fails its hash is fetched whole again next time.
          for (const part of partsOfFile(jobs.values(), index)) await journal.forget(part.chunk.index).catch(() => undefined);
          fail(error);
        }),
      );
    for (const [index, count] of remaining) if (count === 0) finish(index);

    // As many workers as the shared limit lets run: each queues one chunk at a time, so the queue
    // never holds a closure per chunk, while the limit still caps requests across parallel models.
    const todo = [...jobs.values()].filter((job) => !journal.done.has(job.chunk.index));
    await forEachLimited(todo, env.limit.concurrency, (job) =>
      env.limit(async () => {
        if (controller.signal.aborted) return;
        try {
          await fetchChunk(fetchEnv, job, journal);
          chunkLanded(job);
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
    const first = failures.find((e) => !(isModelsError(e) && e.code === 'E_ABORTED')) ?? failures[0];
    if (first) throw first;
    await writePointers(env, plan, [...jobs.values()].filter((job) => !job.range));
  } finally {
    env.signal?.removeEventListener('abort', onAbort);
    await Promise.all([...partials.values()].map((p) => p.close()));
    await journal.close();
  }
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
}

/**
 * Verify a completed partial file against its sha256 (or learn it) and move it into the store.
 * `hashed`: the feeder hashing it, or the sha256 of the one chunk that is the whole file, verified.
 */
async function finishFile(env: AssembleEnv, plan: ModelPlan, partial: PartialFile, hashed: PrefixFeeder | string): Promise<void> {
  const { span } = partial;
  // No fsync per file (an fsync storm would dominate on a slow disk): after a crash the journal is
  // re-checked against the bytes on disk, and `models verify` re-hashes what was installed.
  let actual: string;
  try {
    await partial.close();
    actual = typeof hashed === 'string' ? hashed : await hashed.digest();
  } catch (error) {
    throw storageError(error, 'hash', partial.path);
  }
  const expected = plan.shas[span.index];
  if (expected && actual !== expected) {
    await rm(partial.path, { force: true });
    throw new ModelsError('E_INTEGRITY', `${plan.target.name}: file ${span.path} has sha256 ${actual}, the manifest says ${expected}`, {
      hint: 'run the install again; if it repeats, the registry publishes inconsistent data',
    });
  }
  plan.shas[span.index] = actual;
  await env.store.putObject(partial.path, actual);
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

