/**
 * The XPRIM manifest: parse, validate every invariant from the SPEC, and derive the byte layout
 * (where each chunk and each file sit in the model's one byte stream). A manifest that fails any
 * check is rejected whole, before anything is written.
 */
import { ModelsError } from '../util/errors.js';
import { isSha256, sha256 } from '../util/hash.js';
import { checkRelativePath } from '../util/paths.js';

export interface ManifestFile {
  path: string;
  size: number;
  sha256?: string;
}

export interface Manifest {
  total_size: number;
  chunk_size: number;
  chunks: string[];
  chunk_sizes?: number[];
  files: ManifestFile[];
}

/** A chunk's place in the stream. */
export interface ChunkSpan {
  index: number;
  hash: string;
  offset: number;
  size: number;
}

/** A file's place in the stream. */
export interface FileSpan {
  index: number;
  path: string;
  offset: number;
  size: number;
  sha256?: string;
}

export interface ManifestLayout {
  hash: string;
  manifest: Manifest;
  chunks: ChunkSpan[];
  files: FileSpan[];
  totalSize: number;
}

/** Largest size we accept for one manifest document, and for any declared byte count. */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/**
 * Bounds on what one manifest may list, so that memory stays bounded whatever it claims. Real
 * models have a few to a few thousand files, and chunks of 64 KiB or more (16 MiB by default): at
 * most MAX_CHUNKS chunks (4 TiB at 16 MiB), and beyond SMALL_CHUNK_COUNT chunks an average of at
 * least MIN_AVERAGE_CHUNK bytes (a million 64-byte chunks is a memory bomb, not a model).
 */
export const MAX_FILES = 100_000;
export const MAX_CHUNKS = 262_144;
export const SMALL_CHUNK_COUNT = 4096;
export const MIN_AVERAGE_CHUNK = 64 * 1024;
const MAX_TOTAL_SIZE = 2 ** 50; // 1 PiB: beyond that a declared size is absurd, not a model

function reject(where: string, problem: string): never {
  throw new ModelsError('E_MANIFEST', `invalid manifest ${where}: ${problem}`, {
    hint: 'the registry serves a malformed manifest; report it to the registry owner (nothing was written)',
  });
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= MAX_TOTAL_SIZE;
}

/** Manifest file paths follow the one path rule (src/util/paths.ts); re-exported for its importers. */
export { checkRelativePath };

/** Parse and validate manifest bytes fetched from `data/<expectedHash>`. */
export function parseManifest(bytes: Uint8Array, expectedHash: string, where = expectedHash): ManifestLayout {
  if (!isSha256(expectedHash)) reject(where, `address "${expectedHash}" is not a sha256`);
  const actual = sha256(bytes);
  if (actual !== expectedHash) {
    throw new ModelsError('E_INTEGRITY', `manifest ${where} does not match its hash: got sha256 ${actual}`, {
      hint: 'the registry or a proxy served altered bytes; try again, or another mirror',
    });
  }
  if (bytes.byteLength > MAX_MANIFEST_BYTES) reject(where, 'document is too large');
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')); // a view, not a copy
  } catch {
    reject(where, `not JSON (starts with ${JSON.stringify(Buffer.from(bytes.subarray(0, 40)).toString('utf8'))})`);
  }
  return layoutManifest(validateManifest(data, where), expectedHash);
}

function checkCounts(where: string, chunks: number, files: number, totalSize: number): void {
  if (files > MAX_FILES) reject(where, `lists ${files} files, more than the ${MAX_FILES} a model may have`);
  if (chunks > MAX_CHUNKS) reject(where, `lists ${chunks} chunks, more than the ${MAX_CHUNKS} a model may have`);
  if (chunks > SMALL_CHUNK_COUNT && totalSize / chunks < MIN_AVERAGE_CHUNK) {
    reject(where, `${chunks} chunks of ${Math.floor(totalSize / chunks)} bytes on average: beyond ${SMALL_CHUNK_COUNT} chunks they must average at least ${MIN_AVERAGE_CHUNK} bytes`);
  }
}

export function validateManifest(data: unknown, where: string): Manifest {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) reject(where, 'not a JSON object');
  const m = data as Record<string, unknown>;
  if (!isSize(m.total_size)) reject(where, '"total_size" must be a non-negative integer');
  if (!isSize(m.chunk_size) || m.chunk_size === 0) reject(where, '"chunk_size" must be a positive integer');
  if (!Array.isArray(m.chunks)) reject(where, '"chunks" must be an array');
  if (!Array.isArray(m.files)) reject(where, '"files" must be an array');
  checkCounts(where, m.chunks.length, m.files.length, m.total_size);
  m.chunks.forEach((chunk, i) => {
    if (!isSha256(chunk)) reject(where, `chunks[${i}] ${JSON.stringify(chunk).slice(0, 80)} is not a 64-character lowercase sha256`);
  });
  if (m.chunk_sizes !== undefined) {
    if (!Array.isArray(m.chunk_sizes)) reject(where, '"chunk_sizes" must be an array');
    if (m.chunk_sizes.length !== m.chunks.length) reject(where, '"chunk_sizes" and "chunks" differ in length');
    m.chunk_sizes.forEach((size, i) => {
      if (!isSize(size) || size === 0) reject(where, `chunk_sizes[${i}] must be a positive integer`);
    });
  }
  const seen = new Set<string>();
  const files: ManifestFile[] = m.files.map((entry: unknown, i: number) => {
    if (typeof entry !== 'object' || entry === null) reject(where, `files[${i}] is not an object`);
    const f = entry as Record<string, unknown>;
    const problem = checkRelativePath(f.path);
    if (problem) reject(where, `files[${i}] ${JSON.stringify(f.path)}: ${problem}`);
    const path = f.path as string;
    if (!isSize(f.size)) reject(where, `files[${i}] "${path}": size must be a non-negative integer`);
    if (f.sha256 !== undefined && !isSha256(f.sha256)) reject(where, `files[${i}] "${path}": sha256 is not 64 lowercase hex`);
    // Case-folded: two paths that differ only in case collide on macOS and Windows.
    const key = path.toLowerCase();
    if (seen.has(key)) reject(where, `files[${i}] "${path}" appears twice`);
    seen.add(key);
    return { path, size: f.size, ...(f.sha256 !== undefined ? { sha256: f.sha256 as string } : {}) };
  });
  // A file and a folder with the same name cannot both exist.
  for (const { path } of files) {
    const key = path.toLowerCase();
    for (let slash = key.indexOf('/'); slash > 0; slash = key.indexOf('/', slash + 1)) {
      const parent = key.slice(0, slash);
      if (seen.has(parent)) reject(where, `"${parent}" is both a file and a folder`);
    }
  }
  const fileTotal = files.reduce((sum, f) => sum + f.size, 0);
  if (fileTotal !== m.total_size) reject(where, `files add up to ${fileTotal} bytes but total_size is ${m.total_size}`);
  const manifest: Manifest = {
    total_size: m.total_size,
    chunk_size: m.chunk_size,
    chunks: m.chunks as string[],
    files,
    ...(m.chunk_sizes !== undefined ? { chunk_sizes: m.chunk_sizes as number[] } : {}),
  };
  const chunkTotal = chunkSizes(manifest).reduce((sum, size) => sum + size, 0);
  if (Number.isNaN(chunkTotal)) {
    reject(where, `${manifest.chunks.length} chunks of ${manifest.chunk_size} bytes cannot hold total_size ${manifest.total_size}`);
  }
  if (chunkTotal !== manifest.total_size) {
    reject(where, `chunks hold ${chunkTotal} bytes but total_size is ${manifest.total_size}`);
  }
  return manifest;
}

/** Every chunk's size: `chunk_sizes` when present, else `chunk_size` with the remainder last. */
export function chunkSizes(manifest: Manifest): number[] {
  if (manifest.chunk_sizes) return manifest.chunk_sizes;
  const n = manifest.chunks.length;
  if (n === 0) return [];
  const last = manifest.total_size - manifest.chunk_size * (n - 1);
  // A non-positive or oversized remainder means the chunk count does not fit total_size.
  if (last <= 0 || last > manifest.chunk_size) return manifest.chunks.map(() => Number.NaN);
  return manifest.chunks.map((_, i) => (i === n - 1 ? last : manifest.chunk_size));
}

export function layoutManifest(manifest: Manifest, hash: string): ManifestLayout {
  let offset = 0;
  const sizes = chunkSizes(manifest);
  const chunks = manifest.chunks.map((chunkHash, index) => {
    const span = { index, hash: chunkHash, offset, size: sizes[index] as number };
    offset += span.size;
    return span;
  });
  offset = 0;
  const files = manifest.files.map((file, index) => {
    const span: FileSpan = { index, path: file.path, offset, size: file.size, ...(file.sha256 ? { sha256: file.sha256 } : {}) };
    offset += file.size;
    return span;
  });
  // The spans stand in for the manifest's own file list: one object per file, not two.
  return { hash, manifest: { ...manifest, files }, chunks, files, totalSize: manifest.total_size };
}

/** The chunks whose bytes overlap [offset, offset + size). Binary search: chunk lists can be long. */
export function chunksOverlapping(layout: ManifestLayout, offset: number, size: number): ChunkSpan[] {
  if (size === 0) return [];
  const { chunks } = layout;
  let lo = 0;
  let hi = chunks.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((chunks[mid] as ChunkSpan).offset <= offset) lo = mid;
    else hi = mid - 1;
  }
  const out: ChunkSpan[] = [];
  for (let i = lo; i < chunks.length; i++) {
    const chunk = chunks[i] as ChunkSpan;
    if (chunk.offset >= offset + size) break;
    if (chunk.offset + chunk.size > offset) out.push(chunk);
  }
  return out;
}

/**
 * The files whose bytes overlap a chunk. Files are consecutive spans of the stream, so their ends
 * never decrease: a binary search finds the first, and the walk stops past the chunk. (A linear
 * filter per chunk made planning a 100,000-file, 262,144-chunk manifest quadratic.)
 */
export function filesOverlapping(layout: ManifestLayout, chunk: ChunkSpan): FileSpan[] {
  const { files } = layout;
  let lo = 0;
  let hi = files.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const f = files[mid] as FileSpan;
    if (f.offset + f.size <= chunk.offset) lo = mid + 1;
    else hi = mid;
  }
  const out: FileSpan[] = [];
  for (let i = lo; i < files.length; i++) {
    const f = files[i] as FileSpan;
    if (f.offset >= chunk.offset + chunk.size) break;
    if (f.size > 0) out.push(f);
  }
  return out;
}
