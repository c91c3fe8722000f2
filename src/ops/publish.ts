/**
 * `models publish`: chunk a folder of files into an XPRIM registry folder (data/<sha256> chunks, a
 * manifest with per-file sha256, models.json updated under a cross-process lock). The files, sorted
 * by the UTF-8 bytes of their posix relative path, form one byte stream cut into chunks, so the
 * same folder always yields the same manifest hash, whatever order readdir returns.
 *
 * The steps, in order (the parts are in src/ops/publish/):
 *   validateOptions   names, aliases, chunking: checked before any I/O
 *   scanSource        the files, sorted; symlinks, special files and case clashes refused
 *   openRegistry      data/ created; never inside the source folder
 *   planVersion       name conflicts against the current index (fail fast); the chunking scheme
 *   buildContent      the stream cut into chunks, written to data/ (or only hashed), the manifest
 *   writeManifest     data/<manifest hash>
 *   updateIndex       models.json rewritten under the registry lock (src/ops/registry-index.ts)
 */
import { realpath } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CATALOG_FILE } from '../registry/catalog.js';
import { type Manifest, parseManifest } from '../registry/manifest.js';
import { storageError } from '../util/errors.js';
import { ensureDir } from '../util/fsutil.js';
import { sha256 } from '../util/hash.js';
import { type Chunking, createCutter } from './chunker.js';
import { applyChange, checkNames, type IndexChange } from './publish/index-change.js';
import { ObjectWriter, serializeManifest } from './publish/objects.js';
import { type PublishRequest, type Scheme, checkManifestSize, inheritScheme, usage, validateOptions } from './publish/options.js';
import { type Source, isInside, scanSource } from './publish/source.js';
import { type WriteChunk, streamChunks } from './publish/stream.js';
import { readIndex, updateIndex } from './registry-index.js';

export { DEFAULT_CHUNK_SIZE, DEFAULT_CHUNKING } from './publish/options.js';
/** Parses --chunk-size and the like; it lives with formatBytes, and stays importable from here. */
export { parseSize } from '../util/units.js';

export interface PublishProgress {
  bytesDone: number;
  bytesTotal: number;
  file?: string;
}

export interface PublishOptions {
  /** Folder of files to publish, recursively. Symlinks are followed only when they stay inside it. */
  sourceDir: string;
  /** The registry folder (created if missing): models.json + data/<sha256>. */
  registryDir: string;
  /** "<group>/<model>". */
  model: string;
  version: string;
  /** Each becomes `{ hash, alias_of: version }`; moving an existing alias is allowed. */
  aliases?: string[];
  /**
   * `cdc`: content-defined chunks (docs/cdc.md), so a later version that changes a few bytes shares
   * every other chunk. `fixed`: every `chunkSize` bytes. Default: `fixed` when `chunkSize` is
   * given, else what the model's published versions use, else DEFAULT_CHUNKING.
   */
  chunking?: Chunking;
  /** For `fixed` chunking only. Default 16 MiB. */
  chunkSize?: number;
  metadata?: Record<string, string>;
  onProgress?: (event: PublishProgress) => void;
}

export interface PublishResult {
  model: string;
  version: string;
  manifestHash: string;
  totalSize: number;
  files: number;
  chunking: Chunking;
  chunks: number;
  /** Chunk files this run wrote (the others were already in the registry). */
  chunksWritten: number;
  /** Bytes written under data/: new chunks plus the manifest when it was new. */
  bytesWritten: number;
  aliases: string[];
  /** Nothing was written at all: same content already published, same aliases. */
  unchanged: boolean;
}

export async function publish(options: PublishOptions): Promise<PublishResult> {
  const request = validateOptions(options);
  const source = await scanSource(options.sourceDir);
  if (request.scheme) checkManifestSize(source.totalSize, request.scheme); // before anything is created
  const dataDir = await openRegistry(options.registryDir, options.sourceDir, source.root);
  const { scheme, existingHash } = await planVersion(options.registryDir, dataDir, request, source.totalSize);
  const objects = new ObjectWriter(dataDir);
  const built = await buildContent({ source, sourceDir: options.sourceDir, scheme, onProgress: options.onProgress }, existingHash, objects, request);
  // Our own output must be what every client accepts.
  parseManifest(Buffer.from(built.text), built.hash, `${request.group}/${request.name} ${request.version}`);
  await objects.writeManifest(built.text, built.hash);
  const indexChanged = await updateIndex(options.registryDir, (index) => applyChange(index, { ...changeOf(request), hash: built.hash }));
  return {
    model: `${request.group}/${request.name}`,
    version: request.version,
    manifestHash: built.hash,
    totalSize: source.totalSize,
    files: source.files.length,
    chunking: scheme.chunking,
    chunks: built.manifest.chunks.length,
    chunksWritten: objects.chunksWritten,
    bytesWritten: objects.bytesWritten,
    aliases: request.aliases,
    unchanged: !indexChanged && objects.bytesWritten === 0,
  };
}

function changeOf(request: PublishRequest): Omit<IndexChange, 'hash'> {
  return { group: request.group, name: request.name, version: request.version, metadata: request.metadata, aliases: request.aliases };
}

/** Creates data/ and returns its path. The registry must not be inside the source folder: it would publish itself. */
async function openRegistry(registryDir: string, sourceDir: string, sourceRoot: string): Promise<string> {
  const insideSource = (): Error => usage(`registry ${registryDir} is inside the source folder ${sourceDir}`, 'put the registry folder somewhere else');
  // Checked before creating anything, and again on the real path once the folder exists.
  if (isInside(resolve(registryDir), resolve(sourceDir)) || isInside(resolve(registryDir), sourceRoot)) throw insideSource();
  const dataDir = join(registryDir, 'data');
  await ensureDir(dataDir);
  const realRegistry = await realpath(registryDir).catch((error: unknown) => {
    throw storageError(error, 'read', registryDir);
  });
  if (isInside(realRegistry, sourceRoot)) throw insideSource();
  return dataDir;
}

/**
 * Read the index as it is now (no lock: a hint, not the decision): refuse name conflicts before
 * anything is chunked, pick the scheme, and say whether the version is already published.
 */
async function planVersion(registryDir: string, dataDir: string, request: PublishRequest, totalSize: number): Promise<{ scheme: Scheme; existingHash: string | undefined }> {
  const index = await readIndex(join(registryDir, CATALOG_FILE));
  const versions = index[request.group]?.[request.name] ?? {};
  checkNames(versions, changeOf(request));
  const scheme = request.scheme ?? (await inheritScheme(dataDir, versions, request.version));
  checkManifestSize(totalSize, scheme);
  return { scheme, existingHash: versions[request.version]?.hash };
}

interface Content {
  source: Source;
  sourceDir: string;
  scheme: Scheme;
  onProgress: ((event: PublishProgress) => void) | undefined;
}

interface Built {
  manifest: Manifest;
  text: string;
  hash: string;
}

/**
 * The manifest of the folder, with its chunks in data/. When the version is already published,
 * hash without writing first: other content is then refused leaving no orphan chunks behind, and
 * the same content is written only to repair a chunk that went missing or got damaged.
 */
async function buildContent(content: Content, existingHash: string | undefined, objects: ObjectWriter, request: PublishRequest): Promise<Built> {
  if (existingHash === undefined) return buildManifest(content, objects.writeChunk);
  const hashed = await buildManifest(content, async () => undefined);
  if (hashed.hash !== existingHash) {
    throw usage(
      `${request.group}/${request.name} ${request.version} is already published with other content (manifest ${existingHash}, this folder gives ${hashed.hash})`,
      'versions are immutable: publish a new version name',
    );
  }
  if (await objects.hasAllChunks(hashed.manifest)) return hashed;
  return buildManifest(content, objects.writeChunk);
}

async function buildManifest({ source, sourceDir, scheme, onProgress }: Content, sink: WriteChunk): Promise<Built> {
  const { chunking, chunkSize } = scheme;
  const streamed = await streamChunks(source.files, createCutter(chunking, chunkSize), sourceDir, sink, onProgress);
  const manifest: Manifest = {
    total_size: streamed.totalSize,
    chunk_size: chunkSize,
    chunks: streamed.chunks,
    ...(chunking === 'cdc' ? { chunk_sizes: streamed.sizes } : {}),
    files: streamed.files,
  };
  const text = serializeManifest(manifest);
  return { manifest, text, hash: sha256(text) };
}
