/**
 * Tar and tar.gz archives, with node-tar's Parser: a streaming header parser (pax and GNU long
 * names included) that drops oversized metadata entries instead of buffering them, and in strict
 * mode turns every damaged header into an error. We gunzip with node:zlib ourselves, so that
 * backpressure holds end to end and the expansion is measured. A tar has no index, so entries are
 * checked as the stream reaches them: a bad entry late in the archive stops the extraction there,
 * leaving what came before in the destination for the caller to delete.
 */
import { createReadStream } from 'node:fs';
import { Readable, addAbortSignal, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { abortError, isModelsError, storageError } from '../util/errors.js';
import type { ArchiveContext } from './context.js';
import { PathTree } from './path-tree.js';
import { entryNameProblem, refuseEntry, stripEntryName } from './rules.js';
import type { ExtractedFile } from './sink.js';

const CHUNK = 64 * 1024;

type EntryReader = (entry: ReadEntry) => Readable;

async function extractEntry(entry: ReadEntry, ctx: ArchiveContext, tree: PathTree, files: ExtractedFile[], read: EntryReader): Promise<void> {
  const name = entry.path;
  ctx.budget.entry(name);
  const refuse = (problem: string) => refuseEntry(ctx.name, name, problem);
  const problem = entryNameProblem(name);
  if (problem) throw refuse(problem);
  let kind: 'file' | 'dir';
  switch (entry.type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      kind = 'file';
      break;
    case 'Directory':
      kind = 'dir';
      break;
    case 'SymbolicLink':
      throw refuse(`is a symbolic link (to ${JSON.stringify(entry.linkpath)}); archives with links are not installed`);
    case 'Link':
      throw refuse(`is a hard link (to ${JSON.stringify(entry.linkpath)}); archives with links are not installed`);
    case 'CharacterDevice':
    case 'BlockDevice':
    case 'FIFO':
      throw refuse('is a device or FIFO');
    default:
      throw refuse(`has an unsupported type (${entry.type})`);
  }
  const path = stripEntryName(name, ctx.strip);
  if (path === '' && kind === 'file') throw refuse(`has no name left after strip: ${ctx.strip}`);
  const conflict = path === '' ? undefined : tree.add(path, kind);
  if (conflict) throw refuse(conflict);
  if (kind === 'dir') {
    entry.resume(); // the parser waits for each entry to end before the next
    await ctx.sink.directory(path);
    return;
  }
  if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw refuse(`declares an impossible size (${entry.size})`);
  ctx.budget.file(path, entry.size);
  const executable = ((entry.mode ?? 0) & 0o111) !== 0;
  files.push(await ctx.sink.file(path, read(entry), { size: entry.size, executable }));
}

/** The archive's bytes as a tar stream: the file itself, or gunzipped. */
function tarStream(ctx: ArchiveContext, gzip: boolean): Readable {
  const file = createReadStream(ctx.archivePath, { highWaterMark: CHUNK });
  const stream = gzip ? pipeline(file, createGunzip({ chunkSize: CHUNK }), () => {}) : file;
  if (ctx.signal) addAbortSignal(ctx.signal, stream);
  return stream;
}

function tarError(error: unknown, ctx: ArchiveContext) {
  if (isModelsError(error)) return error;
  if (ctx.signal?.aborted) return abortError();
  if (error instanceof Error && 'syscall' in error) return storageError(error, 'read the archive', ctx.archivePath);
  return refuseEntry(ctx.name, undefined, `is not a valid tar: ${error instanceof Error ? error.message : String(error)}`);
}

export async function extractTar(ctx: ArchiveContext, gzip: boolean): Promise<ExtractedFile[]> {
  const files: ExtractedFile[] = [];
  const tree = new PathTree();
  const parser = new Parser({ strict: true, brotli: false, zstd: false });
  let failure: unknown;
  let eof = false;
  const waiters = new Set<() => void>();
  const reading = new Set<Readable>();
  // The first failure wins; it also ends the entry being written, so nothing goes on behind our back.
  const fail = (error: unknown) => {
    failure ??= error;
    for (const stream of reading) stream.destroy();
    for (const wake of [...waiters]) wake();
  };
  const read: EntryReader = (entry) => {
    const stream = Readable.from(entry, { objectMode: false });
    reading.add(stream);
    stream.once('close', () => reading.delete(stream));
    return stream;
  };
  // Resolves on the parser's event, or as soon as anything has failed.
  const until = (event: string) =>
    new Promise<void>((resolve) => {
      if (failure !== undefined) return resolve();
      const wake = () => {
        parser.off(event, wake);
        waiters.delete(wake);
        resolve();
      };
      parser.on(event, wake);
      waiters.add(wake);
    });

  let chain = Promise.resolve();
  parser.on('entry', (entry: ReadEntry) => {
    chain = chain.then(() => (failure === undefined ? extractEntry(entry, ctx, tree, files, read) : undefined)).catch(fail);
  });
  parser.on('ignoredEntry', (entry: ReadEntry) => {
    fail(refuseEntry(ctx.name, entry.path, entry.meta ? 'has a metadata header over 1 MiB' : `has an unsupported type (${entry.type})`));
  });
  parser.on('error', (error: Error) => fail(tarError(error, ctx)));
  parser.on('eof', () => (eof = true));

  const input = tarStream(ctx, gzip);
  try {
    let expanded = 0;
    for await (const chunk of input as AsyncIterable<Buffer>) {
      // node-tar would silently gunzip a second layer, outside our backpressure and accounting.
      if (expanded === 0 && chunk[0] === 0x1f && chunk[1] === 0x8b) throw refuseEntry(ctx.name, undefined, 'is compressed twice');
      expanded += chunk.length;
      ctx.budget.expanded(expanded);
      if (!parser.write(chunk)) await until('drain');
      if (failure !== undefined) throw failure;
      if (eof) break; // what follows the end-of-archive blocks is padding, or junk: not ours to buffer
    }
    const ended = until('end');
    parser.end();
    await ended;
    await chain;
    if (failure !== undefined) throw failure;
    return files;
  } catch (error) {
    fail(error);
    await chain;
    throw tarError(failure, ctx);
  } finally {
    input.destroy();
  }
}
