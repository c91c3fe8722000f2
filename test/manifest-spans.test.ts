/**
 * The chunk/file overlap arithmetic every installer step uses: the binary searches agree with the
 * plain definition on any stream layout (fuzzed), and stay fast on the largest manifest allowed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ChunkSpan, type Manifest, MAX_CHUNKS, MAX_FILES, chunksOverlapping, filesOverlapping, layoutManifest } from '../src/registry/manifest.js';

const HASH = 'a'.repeat(64);

function layoutOf(fileSizes: number[], chunkSizes: number[]) {
  const manifest: Manifest = {
    total_size: fileSizes.reduce((a, b) => a + b, 0),
    chunk_size: chunkSizes.reduce((a, b) => Math.max(a, b), 1),
    chunk_sizes: chunkSizes,
    chunks: chunkSizes.map(() => HASH),
    files: fileSizes.map((size, i) => ({ path: `f${i}`, size })),
  };
  return layoutManifest(manifest, HASH);
}

/** A stream of `total` bytes cut into files and into chunks, independently. */
const streams = fc.integer({ min: 2, max: 400 }).chain((total) =>
  fc.tuple(fc.constant(total), fc.array(fc.integer({ min: 0, max: total }), { maxLength: 30 }), fc.array(fc.integer({ min: 1, max: total - 1 }), { maxLength: 30 })),
);

function cut(total: number, points: number[], keepEmpty: boolean): number[] {
  const sorted = [0, ...points.sort((a, b) => a - b), total];
  const sizes = sorted.slice(1).map((p, i) => p - (sorted[i] as number));
  return keepEmpty ? sizes : sizes.filter((s) => s > 0);
}

describe('chunk and file spans', () => {
  it('filesOverlapping and chunksOverlapping agree with the plain definition (fuzzed, empty files included)', () => {
    fc.assert(
      fc.property(streams, ([total, filePoints, chunkPoints]) => {
        const layout = layoutOf(cut(total, filePoints, true), cut(total, [...new Set(chunkPoints)], false));
        for (const chunk of layout.chunks) {
          const expected = layout.files.filter((f) => f.size > 0 && f.offset < chunk.offset + chunk.size && f.offset + f.size > chunk.offset);
          expect(filesOverlapping(layout, chunk).map((f) => f.index)).toEqual(expected.map((f) => f.index));
        }
        for (const file of layout.files) {
          const expected = file.size === 0 ? [] : layout.chunks.filter((c) => c.offset < file.offset + file.size && c.offset + c.size > file.offset);
          expect(chunksOverlapping(layout, file.offset, file.size).map((c: ChunkSpan) => c.index)).toEqual(expected.map((c) => c.index));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('stays near-linear on the largest manifest allowed (100,000 files, 262,144 chunks)', () => {
    const total = MAX_CHUNKS * 64 * 1024;
    const each = Math.floor(total / MAX_FILES);
    const files = Array.from({ length: MAX_FILES }, (_, i) => (i < MAX_FILES - 1 ? each : total - each * (MAX_FILES - 1)));
    const layout = layoutOf(files, Array.from({ length: MAX_CHUNKS }, () => 64 * 1024));
    const started = performance.now();
    let pairs = 0;
    for (const chunk of layout.chunks) pairs += filesOverlapping(layout, chunk).length;
    // A linear scan per chunk is ~2.6e10 steps (minutes); the search takes well under a second.
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(pairs).toBeGreaterThanOrEqual(MAX_CHUNKS);
  });
});
