/**
 * Zip archives, with yauzl: it reads the central directory from the file (random access, nothing
 * buffered whole), checks every entry's actual size against its declared size while inflating, and
 * leaves file-name policy to us (decodeStrings off, our rules applied to the decoded name). Two passes:
 * the first checks every entry's name, type and size before anything is written, so a hostile zip is
 * refused whole; the second streams each file into the sink.
 */
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { abortError, isModelsError, storageError } from '../util/errors.js';
import type { ArchiveContext } from './context.js';
import { PathTree } from './path-tree.js';
import { entryNameProblem, refuseEntry, stripEntryName } from './rules.js';
import type { ExtractedFile } from './sink.js';

/** One central-directory entry, checked: its place in the folder, or '' for a folder stripped away. */
interface ZipRecord {
  path: string;
  kind: 'file' | 'dir';
  size: number;
  crc32: number;
  executable: boolean;
}

const S_IFMT = 0o170000;
const UNIX_TYPES: Record<number, 'file' | 'dir' | 'symlink'> = { 0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink' };
const HOST_UNIX = 3;
const HOST_MACOS = 19;

async function openZip(ctx: ArchiveContext): Promise<ZipFile> {
  try {
    return await yauzl.openPromise(ctx.archivePath, { autoClose: false, decodeStrings: false, validateEntrySizes: true, strictFileNames: true });
  } catch (error) {
    throw zipError(error, ctx);
  }
}

function zipError(error: unknown, ctx: ArchiveContext) {
  if (isModelsError(error)) return error;
  if (ctx.signal?.aborted) return abortError();
  if (error instanceof Error && 'syscall' in error) return storageError(error, 'read the archive', ctx.archivePath);
  return refuseEntry(ctx.name, undefined, `is not a valid zip: ${error instanceof Error ? error.message : String(error)}`);
}

/** The Unix file type and mode bits, when the entry was made on a Unix-like host (else undefined). */
function unixMode(entry: Entry): number | undefined {
  const host = entry.versionMadeBy >> 8;
  if (host !== HOST_UNIX && host !== HOST_MACOS) return undefined;
  const mode = entry.externalFileAttributes >>> 16;
  return mode === 0 ? undefined : mode;
}

function checkEntry(entry: Entry, ctx: ArchiveContext, tree: PathTree): ZipRecord {
  const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
  ctx.budget.entry(name);
  const refuse = (problem: string) => refuseEntry(ctx.name, name, problem);
  const problem = entryNameProblem(name);
  if (problem) throw refuse(problem);
  const mode = unixMode(entry);
  const type = mode === undefined ? undefined : (UNIX_TYPES[mode & S_IFMT] ?? 'special');
  if (type === 'symlink') throw refuse('is a symbolic link; archives with links are not installed');
  if (type === 'special') throw refuse('is a device, FIFO or socket');
  if (entry.isEncrypted()) throw refuse('is encrypted');
  if (!entry.canDecodeFileData()) throw refuse(`uses compression method ${entry.compressionMethod}; only stored and deflate are supported`);
  const kind = name.endsWith('/') || type === 'dir' ? 'dir' : 'file';
  if (kind === 'dir' && entry.uncompressedSize > 0) throw refuse('is a folder but holds data');
  const path = stripEntryName(name, ctx.strip);
  if (path === '' && kind === 'file') throw refuse(`has no name left after strip: ${ctx.strip}`);
  const conflict = path === '' ? undefined : tree.add(path, kind);
  if (conflict) throw refuse(conflict);
  if (kind === 'file') ctx.budget.file(path, entry.uncompressedSize);
  const executable = kind === 'file' && mode !== undefined && (mode & 0o111) !== 0;
  return { path, kind, size: entry.uncompressedSize, crc32: entry.crc32, executable };
}

/** Pass 1: every entry checked, nothing written. */
async function checkDirectory(ctx: ArchiveContext): Promise<ZipRecord[]> {
  const zip = await openZip(ctx);
  try {
    if (zip.entryCount > ctx.budget.limits.maxEntries) {
      throw refuseEntry(ctx.name, undefined, `has ${zip.entryCount} entries, more than the limit of ${ctx.budget.limits.maxEntries}`);
    }
    const tree = new PathTree();
    const records: ZipRecord[] = [];
    let declared = 0;
    for await (const entry of zip.eachEntry()) {
      if (ctx.signal?.aborted) throw abortError();
      const record = checkEntry(entry, ctx, tree);
      records.push(record);
      declared += record.size;
      ctx.budget.expanded(declared);
    }
    return records;
  } catch (error) {
    throw zipError(error, ctx);
  } finally {
    zip.close();
  }
}

/** Pass 2: the same entries, in the same order, streamed into the sink. */
async function writeEntries(ctx: ArchiveContext, records: ZipRecord[]): Promise<ExtractedFile[]> {
  const zip = await openZip(ctx);
  const files: ExtractedFile[] = [];
  try {
    let index = 0;
    for await (const entry of zip.eachEntry()) {
      if (ctx.signal?.aborted) throw abortError();
      const record = records[index++];
      if (record === undefined) throw new Error('the archive changed while it was being extracted');
      if (record.kind === 'dir') {
        await ctx.sink.directory(record.path);
      } else {
        const stream = await zip.openReadStreamPromise(entry);
        files.push(await ctx.sink.file(record.path, stream, { size: record.size, executable: record.executable, crc32: record.crc32 }));
      }
    }
    return files;
  } catch (error) {
    throw zipError(error, ctx);
  } finally {
    zip.close();
  }
}

export async function extractZip(ctx: ArchiveContext): Promise<ExtractedFile[]> {
  return writeEntries(ctx, await checkDirectory(ctx));
}
