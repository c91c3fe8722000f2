/**
 * Where `models publish` cuts the byte stream into chunks. `fixed`: every `size` bytes. `cdc`:
 * content-defined, a FastCDC-style Gear rolling hash, so that after an insertion or an edit the
 * boundaries fall on the same content again and every other chunk is shared with the old version.
 * The algorithm, table and parameters are specified exactly in docs/cdc.md: any implementation
 * that follows it cuts the same bytes into the same chunks.
 */
import { Hasher } from 'gearhash-jit';

export type Chunking = 'fixed' | 'cdc';

const MiB = 1024 * 1024;

/** The CDC parameters (docs/cdc.md, "Parameters"): part of the format, never tuned per run. */
export const CDC = {
  /** No chunk is shorter (but the last): the first `min` bytes of a chunk are not even scanned. */
  min: 4 * MiB,
  /** Up to this length a cut needs the top 25 hash bits zero (rare), from here on the top 21 (likely). */
  normal: 8 * MiB,
  /** No chunk is longer: a cut is forced here. Also what one chunk costs in memory. */
  max: 16 * MiB,
  maskHard: 0xffffff8000000000n,
  maskEasy: 0xfffff80000000000n,
} as const;

/** gearhash-jit copies its input into WebAssembly memory of 512 KiB: scan in slices below that. */
const SLICE = 256 * 1024;

/** Finds where the current chunk ends; the bytes it is given always start at the chunk's first byte. */
export interface Cutter {
  /**
   * `chunk` holds the current chunk's bytes seen so far (it only ever grows between cuts). Returns
   * the chunk's length once its end is among them, else 0 (give it more bytes, or end the stream).
   */
  cut(chunk: Uint8Array): number;
  /** The largest chunk this cutter makes: the buffer it needs. */
  readonly maxChunk: number;
}

export class FixedCutter implements Cutter {
  constructor(readonly maxChunk: number) {}
  cut(chunk: Uint8Array): number {
    return chunk.length >= this.maxChunk ? this.maxChunk : 0;
  }
}

/**
 * The Gear scan of docs/cdc.md: h = (h << 1) + GEAR_TABLE[byte] mod 2^64 (gearhash-jit, the table of
 * the Rust gearhash crate that Hugging Face Xet uses), reset to 0 at every chunk start. Keeps the
 * hash and the scan position between calls for one chunk.
 */
export class GearCutter implements Cutter {
  readonly maxChunk = CDC.max;
  private readonly hard = new Hasher(CDC.maskHard);
  private readonly easy = new Hasher(CDC.maskEasy);
  /** The hash so far (8 bytes, little-endian), as gearhash-jit keeps it. */
  private readonly hash = new Uint8Array(8);
  private scanned = 0;

  cut(chunk: Uint8Array): number {
    const end = Math.min(chunk.length, CDC.max);
    let i = Math.max(this.scanned, CDC.min);
    while (i < end) {
      const hasher = i < CDC.normal ? this.hard : this.easy;
      const stop = Math.min(i < CDC.normal ? Math.min(end, CDC.normal) : end, i + SLICE);
      hasher.hash.set(this.hash);
      const match = hasher.nextMatch(chunk.subarray(i, stop));
      this.hash.set(hasher.hash);
      if (match > 0) return this.done(i + match);
      i = stop;
    }
    if (end === CDC.max) return this.done(CDC.max);
    this.scanned = i;
    return 0;
  }

  private done(length: number): number {
    this.hash.fill(0);
    this.scanned = 0;
    return length;
  }
}

export function createCutter(chunking: Chunking, chunkSize: number): Cutter {
  return chunking === 'cdc' ? new GearCutter() : new FixedCutter(chunkSize);
}
