/**
 * A large object that is one whole file (a `url:` file, a Hub LFS file, an OCI blob) is fetched as
 * several concurrent ranges into its one partial file, as aria2c -x and Ollama do, when its server
 * honours ranges (asked once with `Range: bytes=0-0`); otherwise as one stream. Parts need no hash
 * of their own: the file is hashed in order as its prefix completes, and checked against its sha256.
 */
import type { ChunkJob } from '../fetch/fetch.js';
import type { RegistryClient } from '../registry/client.js';
import { debugLog } from '../util/log.js';

// Part indexes live apart from chunk indexes in the journal: 10^9 + chunk × 10^5 + part.
const PART_BASE = 1_000_000_000;
const MAX_PARTS = 100_000;

/**
 * Replace each whole-object job of at least 2 × `partSize` bytes (MODELS_RANGE_SIZE, default 32 MiB:
 * see bench/run.mjs) by parts of about `partSize`, where the server serves ranges.
 */
export async function splitLargeObjects(jobs: Map<number, ChunkJob>, client: RegistryClient, partSize: number, label: string, signal?: AbortSignal): Promise<void> {
  for (const [index, job] of [...jobs]) {
    if (!isWholeObject(job) || job.chunk.size < 2 * partSize) continue;
    if (!(await servesRanges(client, job.chunk.hash, label, signal))) {
      debugLog(`${label}: the server of ${job.chunk.hash.slice(0, 12)} does not serve ranges: one stream`);
      continue;
    }
    jobs.delete(index);
    for (const part of partsOf(job, index, partSize)) jobs.set(part.chunk.index, part);
  }
}

/** The job's chunk is exactly one file, with the same hash (a whole-file object). */
export function isWholeObject(job: ChunkJob): boolean {
  const target = job.targets[0];
  return job.targets.length === 1 && target !== undefined && target.span.offset === job.chunk.offset && target.span.size === job.chunk.size && target.span.sha256 === job.chunk.hash;
}

function partsOf(job: ChunkJob, index: number, partSize: number): ChunkJob[] {
  const { chunk, targets } = job;
  const path = targets[0]?.path as string;
  const count = Math.min(MAX_PARTS, Math.ceil(chunk.size / partSize));
  const size = Math.ceil(chunk.size / count);
  const parts: ChunkJob[] = [];
  for (let p = 0, start = 0; start < chunk.size; p++, start += size) {
    const length = Math.min(size, chunk.size - start);
    const partIndex = PART_BASE + index * MAX_PARTS + p;
    parts.push({ chunk: { index: partIndex, hash: chunk.hash, offset: chunk.offset + start, size: length }, targets, segments: [{ path, offset: start, length }], range: { start } });
  }
  return parts;
}

/** One tiny request: does the server answer a range with 206? */
async function servesRanges(client: RegistryClient, hash: string, label: string, signal?: AbortSignal): Promise<boolean> {
  return client.request(
    `range probe of ${hash.slice(0, 12)} for ${label}`,
    async (source) => {
      const opened = await source.open(`data/${hash}`, { start: 0, end: 0, ...(signal ? { signal } : {}) });
      if (!opened) return undefined;
      opened.destroy();
      return opened.resumed;
    },
    signal,
    `data/${hash}`,
  );
}

/** The parts of the file at `fileIndex`, to forget together when the file fails its hash. */
export function partsOfFile(jobs: Iterable<ChunkJob>, fileIndex: number): ChunkJob[] {
  return [...jobs].filter((job) => job.range && job.targets[0]?.span.index === fileIndex);
}
