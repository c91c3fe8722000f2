/**
 * A large file with a known sha256 is checked through the chunks it is made of, hashed side by side
 * on the pool's threads: one file's SHA-256 cannot be spread over cores, its chunks' can. The lock
 * pins the manifest and the manifest pins every chunk, so chunks that all match prove the same bytes.
 * Should any chunk not match (or not be readable), the file goes back to its whole-file hash, which
 * gives the verdict against the lock.
 */
import { abortError } from '../../util/errors.js';
import type { ModelEntry } from '../../project/config.js';
import type { LockedModel } from '../../project/lockfile.js';
import { type ChunkSpan, type ManifestLayout, chunksOverlapping, filesOverlapping } from '../../registry/manifest.js';
import type { Segment } from '../../store/store.js';
import type { HashPool } from '../../store/file-hasher.js';
import { forEachLimited } from '../../util/pool.js';
import type { FileTask, VerifyContext } from './context.js';

/** Below this a file hashes whole in well under a second, and its chunks would gain little. */
const SPLIT_MIN_BYTES = 64 * 1024 * 1024;

/** Mark the large files whose every chunk matches as checked (`checkedByChunks`); the rest stay for whole-file hashing. */
export async function checkLargeFilesByChunks(ctx: VerifyContext, entry: ModelEntry, locked: LockedModel, tasks: FileTask[]): Promise<void> {
  const { pool } = ctx;
  const large = tasks.filter((t) => t.sizeOk && t.expected && t.file.size >= SPLIT_MIN_BYTES);
  if (!pool || pool.threads < 2 || large.length === 0) return;
  const layout = await ctx.loadLayout(entry, locked).catch(() => undefined);
  if (!layout) return;
  const taskOf = new Map(tasks.map((t) => [t.file.path, t]));
  const spanOf = new Map(layout.files.map((f) => [f.path, f]));
  for (const t of large) {
    const span = spanOf.get(t.file.path);
    if (!span) continue;
    const chunks = chunksOverlapping(layout, span.offset, span.size).map((chunk) => ({ chunk, segments: segmentsOf(layout, taskOf, chunk) }));
    if (chunks.length < 2 || chunks.some((c) => !c.segments)) continue;
    if (await allMatch(ctx, pool, chunks as { chunk: ChunkSpan; segments: Segment[] }[])) {
      t.checkedByChunks = true;
      t.file.method = 'chunks';
    }
  }
}

/** Where a chunk's bytes are installed, or undefined when a file it spans is missing or the wrong size. */
function segmentsOf(layout: ManifestLayout, taskOf: Map<string, FileTask>, chunk: ChunkSpan): Segment[] | undefined {
  const segments: Segment[] = [];
  for (const f of filesOverlapping(layout, chunk)) {
    const t = taskOf.get(f.path);
    if (!t?.sizeOk) return undefined;
    const from = Math.max(chunk.offset, f.offset);
    const to = Math.min(chunk.offset + chunk.size, f.offset + f.size);
    segments.push({ path: t.abs, offset: from - f.offset, length: to - from });
  }
  return segments;
}

async function allMatch(ctx: VerifyContext, pool: HashPool, chunks: { chunk: ChunkSpan; segments: Segment[] }[]): Promise<boolean> {
  let matched = true;
  await forEachLimited(chunks, ctx.limit.concurrency, ({ chunk, segments }) =>
    ctx.limit(async () => {
      if (ctx.signal?.aborted) throw abortError();
      if (!matched) return;
      const actual = await pool.hashSegments(segments).catch(() => '');
      ctx.count(chunk.size);
      if (actual !== chunk.hash) matched = false;
    }),
  );
  return matched;
}
