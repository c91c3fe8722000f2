/**
 * Which unpacker an archive needs: the declared `extract:` format, or for `auto` the file name, and
 * failing that the first bytes. The first bytes are checked against the declared format too, so
 * that a mislabelled file gets a clear message instead of a confusing parse error.
 */
import { open } from 'node:fs/promises';
import { storageError } from '../util/errors.js';
import { refuseEntry } from './rules.js';

export type ArchiveFormat = 'zip' | 'tar' | 'tar.gz';
export type ExtractFormat = ArchiveFormat | 'tgz' | 'auto';

const SNIFF_BYTES = 512;

/** The format a file name implies, if any. */
export function formatFromName(name: string): ArchiveFormat | undefined {
  const lower = name.toLowerCase();
  if (lower.endsWith('.zip')) return 'zip';
  if (lower.endsWith('.tar.gz') || lower.endsWith('.tgz')) return 'tar.gz';
  if (lower.endsWith('.tar')) return 'tar';
  return undefined;
}

type Magic = 'zip' | 'gzip' | 'ustar' | 'unknown';

function sniff(head: Buffer): Magic {
  // Local file header, or the end record of an empty zip.
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 3 || head[2] === 5) && head[3] === head[2] + 1) return 'zip';
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'ustar';
  return 'unknown';
}

async function readHead(archivePath: string): Promise<Buffer> {
  let handle;
  try {
    handle = await open(archivePath, 'r');
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } catch (error) {
    throw storageError(error, 'read the archive', archivePath);
  } finally {
    await handle?.close();
  }
}

/** Resolve the declared format and check that the bytes agree with it. */
export async function resolveFormat(archivePath: string, name: string, declared: ExtractFormat): Promise<ArchiveFormat> {
  const magic = sniff(await readHead(archivePath));
  let format: ArchiveFormat | undefined = declared === 'tgz' ? 'tar.gz' : declared === 'auto' ? formatFromName(name) : declared;
  if (format === undefined) {
    format = magic === 'zip' ? 'zip' : magic === 'gzip' ? 'tar.gz' : magic === 'ustar' ? 'tar' : undefined;
    if (format === undefined) {
      throw refuseEntry(name, undefined, 'is not a zip, tar or tar.gz archive (unknown first bytes)', 'name the format with extract: zip | tar | tar.gz');
    }
  }
  const expected: Magic[] = format === 'zip' ? ['zip'] : format === 'tar.gz' ? ['gzip'] : ['ustar', 'unknown'];
  if (!expected.includes(magic)) {
    const actual = magic === 'zip' ? 'a zip' : magic === 'gzip' ? 'gzip-compressed (tar.gz)' : 'not a recognisable archive';
    throw refuseEntry(name, undefined, `was declared as ${format} but its bytes are ${actual}`, 'fix the extract: format in models.yaml (or use extract: auto)');
  }
  return format;
}
