/**
 * checkModels: every file an integrity file lists, checked on disk (fast: existence, size and, if
 * asked, mtime; full: a streaming sha256), never following a symlink out of the install root.
 */
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { ReadinessError, aborted, unreadable } from './errors.js';
import { type Integrity, type IntegrityFile, type IntegrityModel, readIntegrity } from './integrity.js';
import { renderText } from './report.js';
import { absoluteFolder, select } from './select.js';
import type { CheckOptions, FileReport, ModelReport, ModelState, ReadinessReport } from './types.js';

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

async function hashFile(path: string, signal: AbortSignal | undefined): Promise<string> {
  const hash = createHash('sha256');
  // L2-sized reads, as HASH_READ_SIZE in util/hash.ts (the runtime imports only node:).
  const stream = createReadStream(path, { highWaterMark: 128 * 1024 });
  try {
    for await (const chunk of stream) {
      if (signal?.aborted) throw aborted(signal);
      hash.update(chunk as Buffer);
    }
  } finally {
    stream.destroy();
  }
  return hash.digest('hex');
}

interface Context {
  rootReal: string;
  mode: 'fast' | 'full';
  checkMtime: boolean;
  signal: AbortSignal | undefined;
}

async function checkFile(ctx: Context, folder: string, entry: IntegrityFile): Promise<FileReport> {
  const abs = join(folder, ...entry.path.split('/'));
  const report = (state: ModelState, reason?: string): FileReport => ({ path: entry.path, state, ...(reason ? { reason } : {}) });
  let real: string;
  try {
    real = await realpath(abs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A dangling symlink is as absent as a deleted file.
    if (code === 'ENOENT' || code === 'ENOTDIR') return report('missing', 'not found');
    return report('corrupt', `cannot access (${code ?? String(error)})`);
  }
  if (!isInside(ctx.rootReal, real)) return report('corrupt', `resolves outside the install root (${real})`);
  let info: Stats;
  try {
    info = await stat(real);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return report('missing', 'not found');
    return report('corrupt', `cannot access (${code ?? String(error)})`);
  }
  if (!info.isFile()) return report('corrupt', 'not a regular file');
  if (info.size !== entry.size) return report('corrupt', `size ${info.size} != ${entry.size}`);
  // Sub-millisecond noise is filesystem precision, not a change.
  if (ctx.checkMtime && entry.mtimeMs !== undefined && Math.abs(info.mtimeMs - entry.mtimeMs) >= 1) {
    return report('corrupt', `mtime changed (${new Date(info.mtimeMs).toISOString()}, installed ${new Date(entry.mtimeMs).toISOString()})`);
  }
  if (ctx.mode === 'full') {
    if (entry.sha256 === undefined) return report('ready', 'no sha256 recorded; size checked only');
    let actual: string;
    try {
      actual = await hashFile(real, ctx.signal);
    } catch (error) {
      if (error instanceof ReadinessError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      return report('corrupt', `cannot read (${code ?? String(error)})`);
    }
    if (actual !== entry.sha256) return report('corrupt', 'sha256 mismatch');
  }
  return report('ready');
}

/** Run `tasks` with at most `limit` in flight, results in order. */
async function pool<T>(tasks: (() => Promise<T>)[], limit: number, signal: AbortSignal | undefined): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      if (signal?.aborted) throw aborted(signal);
      const i = next++;
      results[i] = await (tasks[i] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

function worst(states: Iterable<ModelState>): ModelState {
  let result: ModelState = 'ready';
  for (const state of states) {
    if (state === 'corrupt') return 'corrupt';
    if (state === 'missing') result = 'missing';
  }
  return result;
}

/** Check the models an install root holds against its models.integrity.json. */
export async function checkModels(integrityFileOrRoot: string, options: CheckOptions = {}): Promise<ReadinessReport> {
  const { mode, concurrency } = checkOptions(options);
  const signal = options.signal;
  if (signal?.aborted) throw aborted(signal);

  const integrity = await readIntegrity(integrityFileOrRoot);
  const selected = select(integrity, options.only);
  let rootReal: string;
  try {
    rootReal = await realpath(integrity.root);
  } catch (error) {
    throw unreadable(integrity.file, error);
  }
  const ctx: Context = { rootReal, mode, checkMtime: options.checkMtime ?? false, signal };
  const models = await checkEveryFile(ctx, integrity, selected, concurrency);
  const tags: Record<string, ModelState> = {};
  for (const tag of [...new Set(selected.flatMap((m) => m.tags))].sort()) {
    tags[tag] = worst(selected.filter((m) => m.tags.includes(tag)).map((m) => (models[m.name] as ModelReport).state));
  }
  const ready = Object.values(models).every((m) => m.state === 'ready');
  return {
    ready,
    models,
    tags,
    isReady(nameOrTag: string): boolean {
      if (Object.hasOwn(models, nameOrTag)) return models[nameOrTag]?.state === 'ready';
      if (Object.hasOwn(tags, nameOrTag)) return tags[nameOrTag] === 'ready';
      return false;
    },
    toText(): string {
      return renderText(integrity, mode, ready, models, tags);
    },
  };
}

function checkOptions(options: CheckOptions): { mode: 'fast' | 'full'; concurrency: number } {
  const mode = options.mode ?? 'fast';
  if (mode !== 'fast' && mode !== 'full') throw new ReadinessError('E_USAGE', `checkModels: mode must be "fast" or "full" (got ${JSON.stringify(mode)})`);
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ReadinessError('E_USAGE', `checkModels: concurrency must be a positive integer (got ${String(concurrency)})`);
  }
  return { mode, concurrency };
}

/** One report per selected model: its files checked in one pool, so a big model does not hold up the rest. */
async function checkEveryFile(ctx: Context, integrity: Integrity, selected: IntegrityModel[], concurrency: number): Promise<Record<string, ModelReport>> {
  const tasks: (() => Promise<FileReport>)[] = [];
  const slots: { model: IntegrityModel; folder: string; first: number }[] = [];
  for (const model of selected) {
    const folder = absoluteFolder(integrity, model);
    slots.push({ model, folder, first: tasks.length });
    for (const file of model.files) tasks.push(() => checkFile(ctx, folder, file));
  }
  // Fast mode is a stat per file: cheap, so more in flight; hashing is disk-bound, so the caller decides.
  const files = await pool(tasks, ctx.mode === 'full' ? concurrency : Math.max(concurrency, 16), ctx.signal);
  if (ctx.signal?.aborted) throw aborted(ctx.signal);

  const models: Record<string, ModelReport> = {};
  for (const { model, folder, first } of slots) {
    const reports = files.slice(first, first + model.files.length);
    let state = worst(reports.map((f) => f.state));
    // A model with no files is ready only if its folder was installed.
    if (model.files.length === 0 && state === 'ready' && !(await isDirectory(folder))) state = 'missing';
    models[model.name] = {
      name: model.name,
      model: model.model,
      version: model.version,
      resolved: model.resolved,
      tags: [...model.tags],
      state,
      path: folder,
      files: reports,
    };
  }
  return models;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
