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

/**
 * One extraction's shared state: the first failure (it wins), the entry streams being read and the
 * waits on the parser, which a failure ends so nothing goes on behind our back.
 */
class TarRun {
  readonly parser = new Parser({ strict: true, brotli: false, zstd: false });
  failure: unknown;
  eof = false;
  /** Entries are extracted one after another, in archive order. */
  chain = Promise.resolve();
  private readonly waiters = new Set<() => void>();
  private readonly reading = new Set<Readable>();

  fail(error: unknown): void {
    this.failure ??= error;
    for (const stream of this.reading) stream.destroy();
    for (const wake of [...this.waiters]) wake();
  }

  readonly read: EntryReader = (entry) => {
    const stream = Readable.from(entry, { objectMode: false });
    this.reading.add(stream);
    stream.once('close', () => this.reading.delete(stream));
    return stream;
  };

  /** Resolves on the parser's event, or as soon as anything has failed. */
  until(event: string): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.failure !== undefined) return resolve();
      const wake = () => {
        this.parser.off(event, wake);
        this.waiters.delete(wake);
        resolve();
      };
      this.parser.on(event, wake);
      this.waiters.add(wake);
    });
  }
}

export async function extractTar(ctx: ArchiveContext, gzip: boolean): Promise<ExtractedFile[]> {
  const files: ExtractedFile[] = [];
  const run = new TarRun();
  listen(run, ctx, new PathTree(), files);
  const input = tarStream(ctx, gzip);
  try {
    await feed(run, ctx, input);
    const ended = run.until('end');
    run.parser.end();
    await ended;
    await run.chain;
    if (run.failure !== undefined) throw run.failure;
    return files;
  } catch (error) {
    run.fail(error);
    await run.chain;
    throw tarError(run.failure, ctx);
  } finally {
    input.destroy();
  }
}

function listen(run: TarRun, ctx: ArchiveContext, tree: PathTree, files: ExtractedFile[]): void {
  const { parser } = run;
  parser.on('entry', (entry: ReadEntry) => {
    run.chain = run.chain.then(() => (run.failure === undefined ? extractEntry(entry, ctx, tree, files, run.read) : undefined)).catch((error: unknown) => run.fail(error));
  });
  parser.on('ignoredEntry', (entry: ReadEntry) => {
    run.fail(refuseEntry(ctx.name, entry.path, entry.meta ? 'has a metadata header over 1 MiB' : `has an unsupported type (${entry.type})`));
  });
  parser.on('error', (error: Error) => run.fail(tarError(error, ctx)));
  parser.on('eof', () => (run.eof = true));
}

/** The tar stream into the parser, with backpressure, counting the expanded bytes against the budget. */
async function feed(run: TarRun, ctx: ArchiveContext, input: Readable): Promise<void> {
  let expanded = 0;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    // node-tar would silently gunzip a second layer, outside our backpressure and accounting.
    if (expanded === 0 && chunk[0] === 0x1f && chunk[1] === 0x8b) throw refuseEntry(ctx.name, undefined, 'is compressed twice');
    expanded += chunk.length;
    ctx.budget.expanded(expanded);
    if (!run.parser.write(chunk)) await run.until('drain');
    if (run.failure !== undefined) throw run.failure;
    if (run.eof) break; // what follows the end-of-archive blocks is padding, or junk: not ours to buffer
  }
}
