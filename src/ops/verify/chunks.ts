/**
 * Files with no known sha256 (a reference manifest without per-file hashes, no install record) are
 * checked through the manifest's chunk hashes over the installed byte stream.
 */
import { abortError } from '../../util/errors.js';
import { hashSegments } from '../../fetch/fetch.js';
import type { ModelEntry } from '../../project/config.js';
import type { LockedModel } from '../../project/lockfile.js';
import { type ChunkSpan, type FileSpan, type ManifestLayout, chunksOverlapping, filesOverlapping } from '../../registry/manifest.js';
import type { Segment } from '../../store/store.js';
import { forEachLimited } from '../../util/pool.js';
import type { FileTask, VerifyContext } from './context.js';

export async function verifyByChunks(ctx: VerifyContext, entry: ModelEntry, locked: LockedModel, tasks: FileTask[], byChunks: FileTask[]): Promise<void> {
  let layout: ManifestLayout;
  try {
    layout = await ctx.loadLayout(entry, locked);
  } catch (error) {
    for (const t of byChunks) {
      t.file.method = 'size';
      t.file.detail = `size checked only: no sha256 known and the manifest is unavailable (${(error as Error).message})`;
    }
    return;
  }
  const taskOf = new Map(tasks.map((t) => [t.file.path, t]));
  const spanOf = new Map(layout.files.map((f) => [f.path, f]));
  const chunks = new Map<number, ChunkSpan>();
  for (const t of byChunks) {
    const span = spanOf.get(t.file.path) as FileSpan;
    for (const chunk of chunksOverlapping(layout, span.offset, span.size)) chunks.set(chunk.index, chunk);
  }
  const verdicts: ChunkVerdicts = { failed: new Map(), unchecked: new Map() };
  await forEachLimited(chunks.values(), ctx.limit.concurrency, (chunk) => ctx.limit(() => checkChunk(ctx, layout, taskOf, chunk, verdicts)));
  const { failed, unchecked } = verdicts;
  for (const t of byChunks) {
    const reason = failed.get(t.file.path);
    if (reason) {
      t.file.status = 'corrupt';
      t.file.detail = reason;
    } else if (unchecked.has(t.file.path)) {
      t.file.detail = `partly unchecked: ${unchecked.get(t.file.path) as string}`;
    }
  }
}


/** Why a file is corrupt (a chunk it is in does not match) or only partly checked, by path. */
interface ChunkVerdicts {
  failed: Map<string, string>;
  unchecked: Map<string, string>;
}

/** Hash one chunk over the installed files it spans; blame the files with no hash of their own. */
async function checkChunk(ctx: VerifyContext, layout: ManifestLayout, taskOf: Map<string, FileTask>, chunk: ChunkSpan, verdicts: ChunkVerdicts): Promise<void> {
  if (ctx.signal?.aborted) throw abortError();
  const overlapping = filesOverlapping(layout, chunk);
  const segments: Segment[] = [];
  const unreadable: string[] = [];
  for (const f of overlapping) {
    const t = taskOf.get(f.path) as FileTask;
    if (!t.sizeOk || t.file.status !== 'ok') unreadable.push(f.path);
    const from = Math.max(chunk.offset, f.offset);
    const to = Math.min(chunk.offset + chunk.size, f.offset + f.size);
    segments.push({ path: t.abs, offset: from - f.offset, length: to - from });
  }
  const suspects = overlapping.filter((f) => !(taskOf.get(f.path) as FileTask).expected).map((f) => f.path);
  if (unreadable.length > 0) {
    // A neighbour sharing this chunk is itself bad: this chunk cannot tell about the others.
    const why = `chunk ${chunk.index} also holds ${unreadable.join(', ')}, which ${unreadable.length === 1 ? 'is' : 'are'} bad`;
    for (const path of suspects) verdicts.unchecked.set(path, why);
    return;
  }
  const actual = await hashSegments(segments).catch(() => '');
  ctx.count(chunk.size);
  if (actual !== chunk.hash) for (const path of suspects) verdicts.failed.set(path, `chunk ${chunk.index} (${chunk.hash.slice(0, 12)}…) does not match`);
}
