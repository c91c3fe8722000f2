/**
 * `models publish`: chunk a folder of files into an XPRIM registry folder (data/<sha256> chunks, a
 * manifest with per-file sha256, models.json updated under a cross-process lock). The files, sorted
 * by the UTF-8 bytes of their posix relative path, form one byte stream cut into fixed-size chunks,
 * so the same folder always yields the same manifest hash, whatever order readdir returns.
 */
import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { open, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import lockfile from 'proper-lockfile';
import { ModelsError, storageError } from '../util/errors.js';
import { ensureDir, writeFileAtomic } from '../util/fsutil.js';
import { sha256, sha256File } from '../util/hash.js';
import { CDC, type Chunking, type Cutter, createCutter } from './chunker.js';
import { checkRelativePath, chunkSizes, MAX_MANIFEST_BYTES, parseManifest, type Manifest, type ManifestFile } from '../registry/manifest.js';

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

export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;
/** For new models; decided by measurement (README, "Content-defined chunking"). */
export const DEFAULT_CHUNKING: Chunking = 'cdc';
/** Up to two chunks are held in memory (one when they are big): keep that bounded. */
const MAX_CHUNK_SIZE = 1024 * 1024 * 1024;
const NAME_PART = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const VERSION_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const INDEX_FILE = 'models.json';
const LOCK_FILE = '.models.json.lock';

function usage(message: string, hint: string): ModelsError {
  return new ModelsError('E_USAGE', message, { hint });
}

// ---------------------------------------------------------------------------------------------
// parseSize

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
};

/**
 * A byte count as people write it: "1048576", "64KiB", "16MiB", "1M" (binary, like dd), "1.5GB"
 * (decimal SI). Case-insensitive; a space before the unit is allowed. E_USAGE on anything else.
 */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(String(text));
  const unit = match ? UNITS[(match[2] ?? '').toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw usage(`invalid size "${text}"`, 'write a byte count like 1048576, 64KiB, 16MiB, 1M or 1.5GB');
  }
  const bytes = Math.round(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw usage(`size "${text}" is too large`, 'write a smaller size');
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Scanning the source folder

interface SourceFile {
  /** Posix path relative to the source folder: the manifest path. */
  path: string;
  /** Where to read the bytes (the target when the entry is an in-folder symlink). */
  readPath: string;
  size: number;
}

function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

function compareBytes(a: string, b: string): number {
  // UTF-16 order (JS `<`) differs from UTF-8 byte order above U+FFFF: compare the bytes.
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export async function scanSource(sourceDir: string): Promise<{ root: string; files: SourceFile[] }> {
  let root: string;
  try {
    root = await realpath(sourceDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw usage(`source folder ${sourceDir} does not exist`, 'pass the folder that holds the model files');
    }
    throw storageError(error, 'read', sourceDir);
  }
  const rootStat = await stat(root).catch((error: unknown) => {
    throw storageError(error, 'read', sourceDir);
  });
  if (!rootStat.isDirectory()) {
    throw usage(`source ${sourceDir} is not a folder`, 'pass the folder that holds the model files, not a file');
  }

  const files: SourceFile[] = [];
  // `ancestors` holds the real paths of the folders being walked, to refuse symlink cycles.
  const walk = async (realDir: string, relDir: string, ancestors: Set<string>): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(realDir, { withFileTypes: true });
    } catch (error) {
      throw storageError(error, 'read the folder', join(sourceDir, relDir));
    }
    for (const entry of entries) {
      const rel = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
      const shown = join(sourceDir, rel);
      let real = join(realDir, entry.name);
      let kind: 'file' | 'dir' | 'other' = entry.isFile() ? 'file' : entry.isDirectory() ? 'dir' : 'other';
      if (entry.isSymbolicLink()) {
        try {
          real = await realpath(real);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
            throw usage(`symlink ${shown} is broken`, 'remove the link or point it at a file inside the source folder');
          }
          throw storageError(error, 'resolve the symlink', shown);
        }
        if (!isInside(real, root)) {
          throw usage(
            `symlink ${shown} points outside the source folder (to ${real})`,
            'copy the file into the source folder instead of linking to it',
          );
        }
        const target = await stat(real).catch((error: unknown) => {
          throw storageError(error, 'read', shown);
        });
        kind = target.isFile() ? 'file' : target.isDirectory() ? 'dir' : 'other';
      }
      const problem = checkRelativePath(rel);
      if (problem) throw usage(`cannot publish ${shown}: ${problem}`, 'rename the file to a portable name');
      if (kind === 'other') {
        throw usage(`${shown} is not a regular file or folder`, 'remove it from the source folder (sockets, pipes and devices cannot be published)');
      }
      if (kind === 'dir') {
        if (ancestors.has(real)) {
          throw usage(`symlink ${shown} makes a cycle`, 'remove the link: it points at one of its own parent folders');
        }
        await walk(real, rel, new Set([...ancestors, real]));
        continue;
      }
      const info = await stat(real).catch((error: unknown) => {
        throw storageError(error, 'read', shown);
      });
      files.push({ path: rel, readPath: real, size: info.size });
    }
  };
  await walk(root, '', new Set([root]));
  files.sort((a, b) => compareBytes(a.path, b.path));

  // Paths that differ only in case, or a file and a folder with the same name ignoring case, collide
  // on macOS and Windows: clients refuse such manifests, so refuse to write one.
  const seen = new Map<string, string>();
  for (const file of files) seen.set(file.path.toLowerCase(), file.path);
  if (seen.size !== files.length) {
    const byKey = new Map<string, string>();
    for (const file of files) {
      const other = byKey.get(file.path.toLowerCase());
      if (other !== undefined) {
        throw usage(`${join(sourceDir, other)} and ${join(sourceDir, file.path)} differ only in case`, 'rename one of them');
      }
      byKey.set(file.path.toLowerCase(), file.path);
    }
  }
  for (const file of files) {
    const segments = file.path.toLowerCase().split('/');
    for (let n = 1; n < segments.length; n++) {
      const clash = seen.get(segments.slice(0, n).join('/'));
      if (clash !== undefined) {
        throw usage(`${join(sourceDir, clash)} clashes with the folder of ${join(sourceDir, file.path)} (names differ only in case)`, 'rename one of them');
      }
    }
  }
  return { root, files };
}

// ---------------------------------------------------------------------------------------------
// Chunking

interface StreamResult {
  chunks: string[];
  sizes: number[];
  files: ManifestFile[];
  totalSize: number;
}

/** Read size: a cut moves the bytes read past it to the other buffer, so keep reads modest. */
const READ_SIZE = 4 * 1024 * 1024;
/** Up to this chunk size a chunk is written while the next one is read (two buffers in memory). */
const OVERLAP_MAX_CHUNK = 64 * 1024 * 1024;

/**
 * One pass over the files, in order, as one stream: hash each file, find chunk boundaries with
 * `cutter`, hash each chunk; `sink` gets every chunk (and the remainder) and writes it while the
 * next chunk is read and hashed. Memory: two chunks (one for chunks above OVERLAP_MAX_CHUNK).
 */
async function streamChunks(
  files: SourceFile[],
  cutter: Cutter,
  sourceDir: string,
  sink: (hash: string, bytes: Buffer) => Promise<void>,
  onProgress?: (event: PublishProgress) => void,
): Promise<StreamResult> {
  const totalSize = files.reduce((sum, f) => sum + f.size, 0);
  const size = Math.min(cutter.maxChunk, Math.max(totalSize, 1));
  let buffer = Buffer.allocUnsafe(size);
  let spare = size <= OVERLAP_MAX_CHUNK ? Buffer.allocUnsafe(size) : undefined;
  let fill = 0;
  let done = 0;
  let writing: Promise<void> = Promise.resolve();
  const chunks: string[] = [];
  const sizes: number[] = [];
  const emit = async (length: number): Promise<void> => {
    const bytes = buffer.subarray(0, length);
    const hash = sha256(bytes);
    chunks.push(hash);
    sizes.push(length);
    if (!spare) {
      await sink(hash, bytes);
      buffer.copyWithin(0, length, fill);
    } else {
      await writing; // the spare buffer held the previous chunk until its write finished
      spare.set(buffer.subarray(length, fill));
      [buffer, spare] = [spare, buffer];
      writing = sink(hash, bytes);
      writing.catch(() => undefined); // awaited (and thrown) at the next chunk or the end
    }
    fill -= length;
  };
  const manifestFiles: ManifestFile[] = [];
  for (const file of files) {
    const shown = join(sourceDir, file.path);
    const fileHash = createHash('sha256');
    let read = 0;
    let grew = false;
    let handle;
    try {
      handle = await open(file.readPath, 'r');
    } catch (error) {
      throw storageError(error, 'read', shown);
    }
    try {
      for (;;) {
        // Read one byte past the expected size to notice a file that grew while we read it.
        const want = Math.min(buffer.length - fill, READ_SIZE, file.size - read + 1);
        let n: number;
        try {
          ({ bytesRead: n } = await handle.read(buffer, fill, want, null));
        } catch (error) {
          throw storageError(error, 'read', shown);
        }
        if (n === 0) break;
        if (read + n > file.size) {
          grew = true;
          break;
        }
        fileHash.update(buffer.subarray(fill, fill + n));
        fill += n;
        read += n;
        done += n;
        onProgress?.({ bytesDone: done, bytesTotal: totalSize, file: file.path });
        for (let length = cutter.cut(buffer.subarray(0, fill)); length > 0; length = cutter.cut(buffer.subarray(0, fill))) await emit(length);
      }
    } finally {
      await handle.close();
    }
    if (grew || read !== file.size) {
      throw new ModelsError('E_USAGE', `${shown} changed while it was being published (expected ${file.size} bytes)`, {
        hint: 'wait until nothing writes to the source folder, then publish again',
      });
    }
    manifestFiles.push({ path: file.path, size: file.size, sha256: fileHash.digest('hex') });
  }
  if (fill > 0) await emit(fill);
  await writing;
  return { chunks, sizes, files: manifestFiles, totalSize };
}

/** Fixed key order and formatting: the same content always gives the same manifest hash. */
export function serializeManifest(manifest: Manifest): string {
  const ordered = {
    total_size: manifest.total_size,
    chunk_size: manifest.chunk_size,
    chunks: manifest.chunks,
    ...(manifest.chunk_sizes ? { chunk_sizes: manifest.chunk_sizes } : {}),
    files: manifest.files.map((f) => ({ path: f.path, size: f.size, ...(f.sha256 ? { sha256: f.sha256 } : {}) })),
  };
  return `${JSON.stringify(ordered, null, 1)}\n`;
}

/** A chunk file already in place with these exact bytes? A damaged one is rewritten, never trusted. */
async function chunkPresent(path: string, hash: string, size: number): Promise<boolean> {
  try {
    const info = await stat(path);
    if (!info.isFile() || info.size !== size) return false;
    return (await sha256File(path)) === hash;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw storageError(error, 'read', path);
  }
}

// ---------------------------------------------------------------------------------------------
// models.json

export interface VersionEntry {
  hash: string;
  metadata?: Record<string, string>;
  alias_of?: string;
  [key: string]: unknown;
}
export type RegistryIndex = Record<string, Record<string, Record<string, VersionEntry>>>;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function readIndex(path: string): Promise<RegistryIndex> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw storageError(error, 'read', path);
  }
  const bad = (problem: string): ModelsError =>
    new ModelsError('E_INDEX', `registry index ${path} is malformed: ${problem}`, {
      hint: 'fix or restore models.json before publishing (it was left as is)',
      file: path,
    });
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw bad(`not JSON (${(error as Error).message})`);
  }
  if (!isObject(data)) throw bad('not a JSON object');
  for (const [group, models] of Object.entries(data)) {
    if (!isObject(models)) throw bad(`"${group}" is not an object`);
    for (const [model, versions] of Object.entries(models)) {
      if (!isObject(versions)) throw bad(`"${group}/${model}" is not an object`);
      for (const [version, entry] of Object.entries(versions)) {
        if (!isObject(entry) || typeof entry.hash !== 'string') throw bad(`"${group}/${model}" version "${version}" has no "hash"`);
      }
    }
  }
  return data as RegistryIndex;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort(compareBytes)) out[key] = sortKeys(value[key]);
  return out;
}

export function serializeIndex(index: RegistryIndex): string {
  return `${JSON.stringify(sortKeys(index), null, 1)}\n`;
}

function sameMetadata(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  return JSON.stringify(sortKeys(a ?? {})) === JSON.stringify(sortKeys(b ?? {}));
}

interface IndexChange {
  group: string;
  name: string;
  version: string;
  hash: string;
  metadata: Record<string, string> | undefined;
  aliases: string[];
}

/** Checks that do not depend on the content (run before chunking too, to fail fast). */
function checkNames(versions: Record<string, VersionEntry>, change: IndexChange): void {
  const model = `${change.group}/${change.name}`;
  const existing = versions[change.version];
  if (existing?.alias_of !== undefined) {
    throw usage(
      `${model} ${change.version} is an alias of ${existing.alias_of}, not a version`,
      'publish under another version name; aliases are set with --alias',
    );
  }
  for (const alias of change.aliases) {
    const entry = versions[alias];
    if (entry && entry.alias_of === undefined) {
      throw usage(`cannot make ${model} ${alias} an alias: it is a published version`, 'choose another alias name');
    }
  }
}

/** Apply the publish to the index in place. Throws when it would change a published version. */
function applyChange(index: RegistryIndex, change: IndexChange): void {
  const model = `${change.group}/${change.name}`;
  const group = (index[change.group] ??= {});
  const versions = (group[change.name] ??= {});
  checkNames(versions, change);
  const existing = versions[change.version];
  if (existing) {
    if (existing.hash !== change.hash) {
      throw usage(
        `${model} ${change.version} is already published with other content (manifest ${existing.hash})`,
        'versions are immutable: publish a new version name',
      );
    }
    if (change.metadata !== undefined && !sameMetadata(existing.metadata, change.metadata)) {
      throw usage(
        `${model} ${change.version} is already published with other metadata`,
        'versions are immutable: publish a new version name, or drop --metadata',
      );
    }
  } else {
    versions[change.version] = {
      hash: change.hash,
      ...(change.metadata && Object.keys(change.metadata).length > 0 ? { metadata: change.metadata } : {}),
    };
  }
  for (const alias of change.aliases) versions[alias] = { hash: change.hash, alias_of: change.version };
}

export async function withRegistryLock<T>(registryDir: string, body: (assertLocked: () => void) => Promise<T>): Promise<T> {
  let compromised: Error | undefined;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(registryDir, {
      lockfilePath: join(registryDir, LOCK_FILE),
      realpath: false,
      // A lock not refreshed for 10 s belongs to a dead process and is taken over.
      stale: 10_000,
      retries: { retries: 60, factor: 1.2, minTimeout: 50, maxTimeout: 1_000 },
      onCompromised: (error) => {
        compromised = error;
      },
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') {
      throw new ModelsError('E_LOCK_TIMEOUT', `registry ${registryDir} is locked by another publish`, {
        hint: `wait for it to finish and try again; if none is running, remove ${join(registryDir, LOCK_FILE)}`,
        cause: error,
      });
    }
    throw storageError(error, 'lock', join(registryDir, LOCK_FILE));
  }
  const assertLocked = (): void => {
    if (compromised) {
      throw new ModelsError('E_LOCK_TIMEOUT', `lost the lock on registry ${registryDir}: ${compromised.message}`, {
        hint: 'another process took the lock over; publish again',
        cause: compromised,
      });
    }
  };
  try {
    return await body(assertLocked);
  } finally {
    await release().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// publish

interface Scheme {
  chunking: Chunking;
  /** The manifest's chunk_size: every fixed chunk's size, or the largest content-defined chunk. */
  chunkSize: number;
}

function validateOptions(options: PublishOptions): { group: string; name: string; scheme: Scheme | undefined; aliases: string[] } {
  const parts = String(options.model).split('/');
  if (parts.length !== 2 || !parts.every((p) => NAME_PART.test(p))) {
    throw usage(
      `invalid model name "${options.model}"`,
      'write <group>/<model>, each part lowercase letters, digits, ".", "_" or "-" (at most 64 characters)',
    );
  }
  const versionHint = 'letters, digits, ".", "_", "+" or "-", starting with a letter or digit (at most 128 characters)';
  if (!VERSION_NAME.test(String(options.version))) throw usage(`invalid version name "${options.version}"`, versionHint);
  const aliases = [...new Set(options.aliases ?? [])];
  for (const alias of aliases) {
    if (!VERSION_NAME.test(String(alias))) throw usage(`invalid alias name "${alias}"`, versionHint);
    if (alias === options.version) throw usage(`alias "${alias}" is the version itself`, 'choose an alias name like latest or stable');
  }
  const chunking = options.chunking ?? (options.chunkSize === undefined ? undefined : 'fixed');
  if (chunking !== undefined && chunking !== 'fixed' && chunking !== 'cdc') {
    throw usage(`invalid chunking "${String(chunking)}"`, 'use --chunking cdc or --chunking fixed');
  }
  if (chunking === 'cdc' && options.chunkSize !== undefined) {
    throw usage('--chunk-size applies to --chunking fixed only', 'drop --chunk-size: content-defined chunks are 4 to 16 MiB (docs/cdc.md)');
  }
  const chunkSize = chunking === 'cdc' ? CDC.max : (options.chunkSize ?? DEFAULT_CHUNK_SIZE);
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw usage(`invalid chunk size ${chunkSize}`, 'use a size between 1 byte and 1 GiB, e.g. --chunk-size 16MiB');
  }
  for (const [key, value] of Object.entries(options.metadata ?? {})) {
    if (key === '' || typeof value !== 'string') {
      throw usage(`invalid metadata entry "${key}"`, 'write metadata as KEY=VALUE with a non-empty key');
    }
  }
  return { group: parts[0] as string, name: parts[1] as string, scheme: chunking ? { chunking, chunkSize } : undefined, aliases };
}

/**
 * Without --chunking or --chunk-size, a model keeps the chunking its versions were published with
 * (this version's when it exists, else `latest`'s, else the last one listed), so that a new
 * version shares their chunks; a new model gets DEFAULT_CHUNKING. A manifest with `chunk_sizes`
 * counts as cdc; without, as fixed chunks of its `chunk_size`.
 */
async function inheritScheme(dataDir: string, versions: Record<string, VersionEntry>, version: string): Promise<Scheme> {
  const entry = versions[version] ?? versions.latest ?? Object.values(versions).at(-1);
  const fallback: Scheme = DEFAULT_CHUNKING === 'cdc' ? { chunking: 'cdc', chunkSize: CDC.max } : { chunking: 'fixed', chunkSize: DEFAULT_CHUNK_SIZE };
  if (!entry) return fallback;
  try {
    const manifest = parseManifest(await readFile(join(dataDir, entry.hash)), entry.hash).manifest;
    if (manifest.chunk_sizes) return { chunking: 'cdc', chunkSize: CDC.max };
    return manifest.chunk_size <= MAX_CHUNK_SIZE ? { chunking: 'fixed', chunkSize: manifest.chunk_size } : fallback;
  } catch {
    return fallback; // a missing or unreadable manifest: nothing to stay compatible with
  }
}

/** ~70 bytes per chunk entry: refuse before writing a manifest clients would reject as too large. */
function checkManifestSize(totalSize: number, { chunking, chunkSize }: Scheme): void {
  if (Math.ceil(totalSize / (chunking === 'cdc' ? CDC.min : chunkSize)) * 80 > MAX_MANIFEST_BYTES) {
    throw usage(`chunk size ${chunkSize} is too small for ${totalSize} bytes (the manifest would be too large)`, 'use a bigger --chunk-size, e.g. 16MiB');
  }
}

export async function publish(options: PublishOptions): Promise<PublishResult> {
  const { group, name, scheme: requested, aliases } = validateOptions(options);
  const model = `${group}/${name}`;
  const { registryDir, sourceDir } = options;
  const { root, files } = await scanSource(sourceDir);
  if (files.length === 0) {
    throw usage(`source folder ${sourceDir} holds no files`, 'put the model files in the folder, then publish');
  }
  const totalSize = files.reduce((sum, f) => sum + f.size, 0);
  if (requested) checkManifestSize(totalSize, requested); // before anything is created

  const insideSource = (): ModelsError =>
    usage(`registry ${registryDir} is inside the source folder ${sourceDir}`, 'put the registry folder somewhere else');
  // Checked before creating anything, and again on the real path once the folder exists.
  if (isInside(resolve(registryDir), resolve(sourceDir)) || isInside(resolve(registryDir), root)) throw insideSource();
  const dataDir = join(registryDir, 'data');
  await ensureDir(dataDir);
  const realRegistry = await realpath(registryDir).catch((error: unknown) => {
    throw storageError(error, 'read', registryDir);
  });
  if (isInside(realRegistry, root)) throw insideSource();
  const indexPath = join(registryDir, INDEX_FILE);
  const change: Omit<IndexChange, 'hash'> = { group, name, version: options.version, metadata: options.metadata, aliases };

  // Fail fast on name conflicts, and when the version exists, hash without writing: a conflicting
  // publish then leaves no orphan chunks behind. The authoritative check runs again under the lock.
  const before = await readIndex(indexPath);
  const versionsBefore = before[group]?.[name] ?? {};
  checkNames(versionsBefore, { ...change, hash: '' });
  const existingHash = versionsBefore[options.version]?.hash;
  const { chunking, chunkSize } = requested ?? (await inheritScheme(dataDir, versionsBefore, options.version));
  checkManifestSize(totalSize, { chunking, chunkSize });

  let chunksWritten = 0;
  let bytesWritten = 0;
  const writeSink = async (hash: string, bytes: Buffer): Promise<void> => {
    const path = join(dataDir, hash);
    if (await chunkPresent(path, hash, bytes.length)) return;
    await writeFileAtomic(path, bytes);
    chunksWritten += 1;
    bytesWritten += bytes.length;
  };
  const noSink = async (): Promise<void> => undefined;

  const toManifest = (s: StreamResult): Manifest => ({
    total_size: s.totalSize,
    chunk_size: chunkSize,
    chunks: s.chunks,
    ...(chunking === 'cdc' ? { chunk_sizes: s.sizes } : {}),
    files: s.files,
  });
  let streamed = await streamChunks(files, createCutter(chunking, chunkSize), sourceDir, existingHash ? noSink : writeSink, options.onProgress);
  let manifest = toManifest(streamed);
  let manifestText = serializeManifest(manifest);
  let manifestHash = sha256(manifestText);
  if (existingHash !== undefined) {
    if (existingHash !== manifestHash) {
      throw usage(
        `${model} ${options.version} is already published with other content (manifest ${existingHash}, this folder gives ${manifestHash})`,
        'versions are immutable: publish a new version name',
      );
    }
    // Same content: repair the registry only if a chunk went missing or got damaged.
    const sizes = chunkSizes(manifest);
    let intact = true;
    for (const [i, hash] of manifest.chunks.entries()) {
      if (!(await chunkPresent(join(dataDir, hash), hash, sizes[i] as number))) {
        intact = false;
        break;
      }
    }
    if (!intact) {
      streamed = await streamChunks(files, createCutter(chunking, chunkSize), sourceDir, writeSink, options.onProgress);
      manifest = toManifest(streamed);
      manifestText = serializeManifest(manifest);
      manifestHash = sha256(manifestText);
    }
  }
  // Our own output must be what every client accepts.
  parseManifest(Buffer.from(manifestText), manifestHash, `${model} ${options.version}`);

  const manifestPath = join(dataDir, manifestHash);
  const onDisk = await readFile(manifestPath, 'utf8').catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw storageError(error, 'read', manifestPath);
  });
  if (onDisk !== manifestText) {
    await writeFileAtomic(manifestPath, manifestText);
    bytesWritten += Buffer.byteLength(manifestText);
  }

  const indexChanged = await withRegistryLock(registryDir, async (assertLocked) => {
    const index = await readIndex(indexPath);
    const oldText = serializeIndex(index);
    applyChange(index, { ...change, hash: manifestHash });
    const newText = serializeIndex(index);
    if (newText === oldText) return false;
    assertLocked();
    await writeFileAtomic(indexPath, newText);
    return true;
  });

  return {
    model,
    version: options.version,
    manifestHash,
    totalSize,
    files: files.length,
    chunking,
    chunks: manifest.chunks.length,
    chunksWritten,
    bytesWritten,
    aliases,
    unchanged: !indexChanged && bytesWritten === 0,
  };
}
