/**
 * What `models cache prune` removes, decided before anything is removed (so --dry-run reports
 * exactly what a real run does). Manifests are evicted least recently used first; a stored file or
 * chunk pointer goes once no kept manifest references it, and a partial download with its manifest.
 */
import { lstat, readFile } from 'node:fs/promises';
import { type Manifest, validateManifest } from '../../registry/manifest.js';
import type { Store } from '../../store/store.js';
import type { Entry } from './entries.js';

/** What one stored manifest holds on to. */
export interface ManifestRefs {
  entry: Entry;
  files: Set<string>;
  chunks: string[];
  sidecarBytes: number;
}

/** The cache as listed, with each manifest's references; `refs` least recently used first. */
export interface CacheContents {
  files: Entry[];
  pointers: Entry[];
  manifests: Entry[];
  partials: Entry[];
  /** Chunk hash -> the stored files its pointer reads. */
  pointerFiles: Map<string, string[]>;
  refs: ManifestRefs[];
}

export interface PruneCriteria {
  olderThanMs: number | undefined;
  maxSizeBytes: number | undefined;
  now: number;
}

export interface Evicted {
  refs: ManifestRefs;
  /** Bytes that go with it: the manifest, its partial download, what no other manifest shares. */
  bytes: number;
}

export interface PrunePlan {
  /** In eviction order. */
  evicted: Evicted[];
  kept: ManifestRefs[];
  goneFiles: Entry[];
  gonePointers: Entry[];
  gonePartials: Entry[];
  sizeBefore: number;
  removedBytes: number;
  /** Of removedBytes, what is not hardlinked into an install (its disk space is released). */
  freedBytes: number;
}

export function manifestBytes(r: ManifestRefs): number {
  return r.entry.size + r.sidecarBytes;
}

export async function refsOf(store: Store, entry: Entry, pointerFiles: Map<string, string[]>): Promise<ManifestRefs> {
  const files = new Set<string>();
  let chunks: string[] = [];
  try {
    if (entry.link) throw new Error('a symlink, not a manifest');
    const manifest: Manifest = validateManifest(JSON.parse(await readFile(entry.path, 'utf8')), entry.name);
    chunks = manifest.chunks;
    for (const f of manifest.files) if (f.sha256) files.add(f.sha256);
    for (const sha of Object.values(await store.readKnownShas(entry.name))) files.add(sha);
    // Chunks shared with another model may point into that model's stored files.
    for (const chunk of chunks) for (const file of pointerFiles.get(chunk) ?? []) files.add(file);
  } catch {
    // unreadable: it holds nothing on to anything, and goes first
  }
  const sidecarBytes = await lstat(`${entry.path}.json`).then((i) => i.size, () => 0);
  return { entry, files, chunks, sidecarBytes };
}

/**
 * Manifests older than the cutoff go; then, for --max-size, the least recently used of the rest
 * until the cache fits. With neither criterion everything goes.
 */
export function planPrune(contents: CacheContents, criteria: PruneCriteria): PrunePlan {
  const noCriteria = criteria.olderThanMs === undefined && criteria.maxSizeBytes === undefined;
  const cutoff = criteria.olderThanMs !== undefined ? criteria.now - criteria.olderThanMs : noCriteria ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  const ledger = new Ledger(contents);
  const kept: ManifestRefs[] = [];
  for (const r of contents.refs) {
    if (r.entry.mtimeMs < cutoff) ledger.evict(r);
    else kept.push(r);
  }
  if (criteria.maxSizeBytes !== undefined) {
    while (kept.length > 0 && ledger.size > criteria.maxSizeBytes) ledger.evict(kept.shift() as ManifestRefs);
  }
  return { ...removals(contents, kept, ledger.evicted, cutoff), evicted: ledger.evicted, kept, sizeBefore: ledger.sizeBefore };
}

const total = (sizes: Map<string, number>): number => [...sizes.values()].reduce((a, b) => a + b, 0);
const sum = (entries: Entry[]): number => entries.reduce((s, e) => s + e.size, 0);

/** Reference counts and sizes, so that evicting a manifest says how many bytes go with it. */
class Ledger {
  readonly sizeBefore: number;
  /** The cache's size once the orphans (nothing holds on to them) and the manifests evicted so far go: what --max-size is compared with. */
  size: number;
  readonly evicted: Evicted[] = [];
  private readonly fileSize: Map<string, number>;
  private readonly pointerSize: Map<string, number>;
  private readonly partialSize: Map<string, number>;
  private readonly fileRefs = new Map<string, number>();
  private readonly chunkRefs = new Map<string, number>();

  constructor({ files, pointers, partials, refs }: CacheContents) {
    this.fileSize = new Map(files.map((f) => [f.name, f.size]));
    this.pointerSize = new Map(pointers.map((p) => [p.name, p.size]));
    this.partialSize = new Map(partials.map((p) => [p.name, p.size]));
    for (const r of refs) {
      for (const f of r.files) this.fileRefs.set(f, (this.fileRefs.get(f) ?? 0) + 1);
      for (const c of new Set(r.chunks)) this.chunkRefs.set(c, (this.chunkRefs.get(c) ?? 0) + 1);
    }
    this.sizeBefore = total(this.fileSize) + total(this.pointerSize) + refs.reduce((s, r) => s + manifestBytes(r), 0) + total(this.partialSize);
    const known = new Set(refs.map((r) => r.entry.name));
    this.size =
      this.sizeBefore -
      sum(files.filter((f) => !this.fileRefs.has(f.name))) -
      sum(pointers.filter((p) => !this.chunkRefs.has(p.name))) -
      sum(partials.filter((p) => !known.has(p.name)));
  }

  evict(r: ManifestRefs): void {
    let bytes = manifestBytes(r) + (this.partialSize.get(r.entry.name) ?? 0);
    const release = (counts: Map<string, number>, key: string, sizes: Map<string, number>) => {
      const left = (counts.get(key) ?? 1) - 1;
      counts.set(key, left);
      if (left === 0) bytes += sizes.get(key) ?? 0;
    };
    for (const f of r.files) release(this.fileRefs, f, this.fileSize);
    for (const c of new Set(r.chunks)) release(this.chunkRefs, c, this.pointerSize);
    this.size -= bytes;
    this.evicted.push({ refs: r, bytes });
  }
}

/** What goes with the kept manifests decided: everything they do not reference. */
function removals(contents: CacheContents, kept: ManifestRefs[], evicted: Evicted[], cutoff: number): Omit<PrunePlan, 'evicted' | 'kept' | 'sizeBefore'> {
  const { files, pointers, partials, manifests, pointerFiles } = contents;
  const keptFiles = new Set<string>();
  const keptChunks = new Set<string>();
  for (const r of kept) {
    for (const f of r.files) keptFiles.add(f);
    for (const c of r.chunks) keptChunks.add(c);
  }
  const evictedHashes = new Set(evicted.map((e) => e.refs.entry.name));
  const goneFiles = files.filter((f) => !keptFiles.has(f.name));
  const goneFileNames = new Set(goneFiles.map((f) => f.name));
  // A kept chunk's pointer goes too when it reads a file that goes.
  const gonePointers = pointers.filter((p) => !keptChunks.has(p.name) || (pointerFiles.get(p.name) ?? []).some((f) => goneFileNames.has(f)));
  const gonePartials = partials.filter((p) => p.mtimeMs < cutoff || evictedHashes.has(p.name) || !manifests.some((m) => m.name === p.name));
  const removedBytes = sum(goneFiles) + sum(gonePointers) + evicted.reduce((s, e) => s + manifestBytes(e.refs), 0) + sum(gonePartials);
  const freedBytes = removedBytes - sum(goneFiles.filter((f) => f.nlink > 1));
  return { goneFiles, gonePointers, gonePartials, removedBytes, freedBytes };
}
