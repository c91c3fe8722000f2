/**
 * Unpack a stored archive (a `url:` entry's `extract: zip | tar | tar.gz | tgz | auto`, `strip: N`)
 * into a staging folder, streaming, and return every extracted file with its size and SHA-256 for
 * the lock. Refused whole (ModelsError E_INTEGRITY, exit 6, naming the archive and the entry) on:
 * `..`, absolute, drive-letter or backslashed names; names the manifest path rules reject; any
 * symbolic or hard link (a link has no content hash for the lock to pin, and model archives do not
 * need them; refusing all of them is simpler to trust than checking where each points); devices,
 * FIFOs, sockets and other special entries; duplicate paths, ignoring case, and a file and a folder
 * of the same name, after `strip`; and bombs: more entries, bytes or expansion than its limits, or an
 * entry holding more bytes than it declares. Nothing is ever written outside `destDir`; after a
 * failure the caller deletes `destDir`. Files are 0644 (0755 when an execute bit was set), folders
 * 0755; no setuid, setgid or sticky bits, no owners, no mtimes.
 */
import { mkdir, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { ModelsError, abortError, storageError } from '../util/errors.js';
import type { ArchiveContext } from './context.js';
import { type ArchiveFormat, type ExtractFormat, resolveFormat } from './format.js';
import { type ArchiveLimits, Budget, resolveLimits } from './limits.js';
import { EntrySink, type ExtractedFile } from './sink.js';

export type { ArchiveFormat, ExtractFormat, ArchiveLimits, ExtractedFile };
export { DEFAULT_LIMITS } from './limits.js';

export interface ExtractOptions {
  /** The archive file (in the store: named by its hash). */
  archivePath: string;
  /** The archive's name in messages and for `auto` (the URL's file name); default: archivePath's base name. */
  name?: string;
  format: ExtractFormat;
  /** Leading path components to drop, as tar --strip-components. */
  strip?: number;
  /** A fresh staging folder (created if missing). Not needed for a dry run. */
  destDir?: string;
  /** Check and hash every entry without writing anything: the file list for `models lock`. */
  dryRun?: boolean;
  /** Defaults in DEFAULT_LIMITS; pass maxTotalBytes from the lock when it has the total. */
  limits?: Partial<ArchiveLimits>;
  signal?: AbortSignal;
  /** Called with the bytes extracted so far, as they are written. */
  onProgress?: (bytes: number) => void;
}

function compareBytes(a: string, b: string): number {
  // UTF-16 order (JS `<`) differs from UTF-8 byte order above U+FFFF: compare the bytes.
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Unpack (or, with dryRun, only check and hash) an archive; the files sorted by path. */
export async function extractArchive(options: ExtractOptions): Promise<ExtractedFile[]> {
  const { archivePath, signal } = options;
  const name = options.name ?? basename(archivePath);
  const strip = options.strip ?? 0;
  if (!Number.isSafeInteger(strip) || strip < 0) {
    throw new ModelsError('E_USAGE', `strip must be a non-negative integer, got ${String(strip)} (archive ${name})`);
  }
  const destDir = options.dryRun ? undefined : options.destDir;
  if (!options.dryRun && destDir === undefined) throw new ModelsError('E_INTERNAL', `extractArchive(${name}): destDir is required unless dryRun`);
  if (signal?.aborted) throw abortError();
  const format: ArchiveFormat = await resolveFormat(archivePath, name, options.format);
  let archiveSize: number;
  try {
    archiveSize = (await stat(archivePath)).size;
    if (destDir !== undefined) await mkdir(destDir, { recursive: true });
  } catch (error) {
    throw storageError(error, 'prepare the extraction of', archivePath);
  }
  const ctx: ArchiveContext = {
    archivePath,
    name,
    strip,
    budget: new Budget(name, resolveLimits(options.limits), archiveSize),
    sink: new EntrySink({ archive: name, destDir, signal, onProgress: options.onProgress }),
    signal,
  };
  // Loaded on first use: yauzl and node-tar cost tens of ms at start-up on every run that has no archive.
  const files = format === 'zip' ? await (await import('./zip.js')).extractZip(ctx) : await (await import('./tar.js')).extractTar(ctx, format === 'tar.gz');
  return files.sort((a, b) => compareBytes(a.path, b.path));
}

/** The files an archive would install, checked and hashed, with nothing written. */
export function listArchive(options: Omit<ExtractOptions, 'destDir' | 'dryRun'>): Promise<ExtractedFile[]> {
  return extractArchive({ ...options, dryRun: true });
}
