/**
 * What a publish was asked to do, checked before any I/O: the model and version names, the
 * aliases, the chunking scheme and the metadata. Also the rules that pick the scheme when none is
 * given, and the bound that keeps the manifest small enough for clients.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VersionEntry } from '../../registry/catalog.js';
import { MAX_MANIFEST_BYTES, parseManifest } from '../../registry/manifest.js';
import { ModelsError } from '../../util/errors.js';
import { CDC, type Chunking } from '../chunker.js';

export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;
/** For new models; decided by measurement (README, "Content-defined chunking"). */
export const DEFAULT_CHUNKING: Chunking = 'cdc';
/** Up to two chunks are held in memory (one when they are big): keep that bounded. */
const MAX_CHUNK_SIZE = 1024 * 1024 * 1024;
const NAME_PART = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const VERSION_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const VERSION_HINT = 'letters, digits, ".", "_", "+" or "-", starting with a letter or digit (at most 128 characters)';

export function usage(message: string, hint: string): ModelsError {
  return new ModelsError('E_USAGE', message, { hint });
}

export interface Scheme {
  chunking: Chunking;
  /** The manifest's chunk_size: every fixed chunk's size, or the largest content-defined chunk. */
  chunkSize: number;
}

/** The options a publish needs checked (PublishOptions holds these and more). */
export interface RequestOptions {
  model: string;
  version: string;
  aliases?: string[] | undefined;
  chunking?: Chunking | undefined;
  chunkSize?: number | undefined;
  metadata?: Record<string, string> | undefined;
}

export interface PublishRequest {
  group: string;
  name: string;
  version: string;
  /** Deduplicated. */
  aliases: string[];
  /** Undefined: inherit the model's scheme (inheritScheme). */
  scheme: Scheme | undefined;
  metadata: Record<string, string> | undefined;
}

/** Every option checked, E_USAGE naming the first one that is wrong. */
export function validateOptions(options: RequestOptions): PublishRequest {
  const [group, name] = checkModelName(options.model);
  if (!VERSION_NAME.test(String(options.version))) throw usage(`invalid version name "${options.version}"`, VERSION_HINT);
  const aliases = checkAliases(options.aliases ?? [], options.version);
  const scheme = requestedScheme(options.chunking, options.chunkSize);
  checkMetadata(options.metadata);
  return { group, name, version: options.version, aliases, scheme, metadata: options.metadata };
}

function checkModelName(model: string): [string, string] {
  const parts = String(model).split('/');
  if (parts.length !== 2 || !parts.every((p) => NAME_PART.test(p))) {
    throw usage(
      `invalid model name "${model}"`,
      'write <group>/<model>, each part lowercase letters, digits, ".", "_" or "-" (at most 64 characters)',
    );
  }
  return parts as [string, string];
}

function checkAliases(requested: string[], version: string): string[] {
  const aliases = [...new Set(requested)];
  for (const alias of aliases) {
    if (!VERSION_NAME.test(String(alias))) throw usage(`invalid alias name "${alias}"`, VERSION_HINT);
    if (alias === version) throw usage(`alias "${alias}" is the version itself`, 'choose an alias name like latest or stable');
  }
  return aliases;
}

/** The scheme the options ask for; undefined when they ask for none (then the model's own is kept). */
function requestedScheme(requestedChunking: Chunking | undefined, requestedSize: number | undefined): Scheme | undefined {
  // A chunk size alone means fixed chunks.
  const chunking = requestedChunking ?? (requestedSize === undefined ? undefined : 'fixed');
  if (chunking !== undefined && chunking !== 'fixed' && chunking !== 'cdc') {
    throw usage(`invalid chunking "${String(chunking)}"`, 'use --chunking cdc or --chunking fixed');
  }
  if (chunking === 'cdc' && requestedSize !== undefined) {
    throw usage('--chunk-size applies to --chunking fixed only', 'drop --chunk-size: content-defined chunks are 4 to 16 MiB (docs/cdc.md)');
  }
  const chunkSize = chunking === 'cdc' ? CDC.max : (requestedSize ?? DEFAULT_CHUNK_SIZE);
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw usage(`invalid chunk size ${chunkSize}`, 'use a size between 1 byte and 1 GiB, e.g. --chunk-size 16MiB');
  }
  return chunking ? { chunking, chunkSize } : undefined;
}

function checkMetadata(metadata: Record<string, string> | undefined): void {
  for (const [key, value] of Object.entries(metadata ?? {})) {
    if (key === '' || typeof value !== 'string') {
      throw usage(`invalid metadata entry "${key}"`, 'write metadata as KEY=VALUE with a non-empty key');
    }
  }
}

/**
 * Without --chunking or --chunk-size, a model keeps the chunking its versions were published with
 * (this version's when it exists, else `latest`'s, else the last one listed), so that a new
 * version shares their chunks; a new model gets DEFAULT_CHUNKING. A manifest with `chunk_sizes`
 * counts as cdc; without, as fixed chunks of its `chunk_size`.
 */
export async function inheritScheme(dataDir: string, versions: Record<string, VersionEntry>, version: string): Promise<Scheme> {
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
export function checkManifestSize(totalSize: number, { chunking, chunkSize }: Scheme): void {
  if (Math.ceil(totalSize / (chunking === 'cdc' ? CDC.min : chunkSize)) * 80 > MAX_MANIFEST_BYTES) {
    throw usage(`chunk size ${chunkSize} is too small for ${totalSize} bytes (the manifest would be too large)`, 'use a bigger --chunk-size, e.g. 16MiB');
  }
}
