/**
 * xprim-models/runtime: a readiness check for apps that ship models installed by
 * `models install --root <dir>`. It reads `<root>/models.integrity.json` and checks the files on disk.
 *
 * Deliberately self-contained: only node: built-ins, so an app's start-up path does not pull the
 * CLI's dependencies (undici, listr2, ajv, yaml) into its bundle.
 */

import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync, type Stats } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

export const INTEGRITY_FILE = 'models.integrity.json';
export const INTEGRITY_VERSION = 1;

export type ModelState = 'ready' | 'missing' | 'corrupt';

export interface FileReport {
  path: string;
  state: ModelState;
  /** Why the file is not ready (e.g. "size 10 != 12", "sha256 mismatch", "not found", "mtime changed"). */
  reason?: string;
}

export interface ModelReport {
  name: string;
  model: string;
  version: string;
  resolved: string;
  tags: string[];
  state: ModelState;
  /** Absolute folder of the model. */
  path: string;
  files: FileReport[];
}

export interface ReadinessReport {
  /** Every checked model is ready. */
  ready: boolean;
  models: Record<string, ModelReport>;
  /** A tag is ready when all its models are ready; corrupt if any is corrupt; else missing. */
  tags: Record<string, ModelState>;
  /** True when a model of that name, or else a tag of that name, is ready; false when unknown. */
  isReady(nameOrTag: string): boolean;
  /** A copyable plain-text report: one line per model, one per tag, a hint for each problem. */
  toText(): string;
}

export interface CheckOptions {
  /** fast: existence + size (+ mtime); full: streaming sha256 of every file. Default fast. */
  mode?: 'fast' | 'full';
  /** Default false (installers often rewrite mtimes); when true a differing recorded mtime is corrupt. */
  checkMtime?: boolean;
  /** Model names or tags; unknown ones throw, so that a typo does not pass silently. */
  only?: string[];
  /** Files hashed at once in full mode; default 4. */
  concurrency?: number;
  signal?: AbortSignal;
}

export type ReadinessErrorCode =
  | 'E_NOT_INSTALLED' // no integrity file
  | 'E_INTEGRITY_FILE' // integrity file unreadable, malformed or hostile
  | 'E_UNKNOWN_MODEL' // a name or tag that the integrity file does not know
  | 'E_USAGE' // bad options
  | 'E_ABORTED';

const exitCodes: Record<ReadinessErrorCode, number> = {
  E_NOT_INSTALLED: 4,
  E_INTEGRITY_FILE: 2,
  E_UNKNOWN_MODEL: 4,
  E_USAGE: 2,
  E_ABORTED: 130,
};

/** The one error this module throws. `message` is one line that already says what to do (`hint`). */
export class ReadinessError extends Error {
  readonly code: ReadinessErrorCode;
  /** The CLI exit code with the same meaning (SPEC), for tools that wrap this module. */
  readonly exitCode: number;
  readonly hint: string | undefined;
  /** The integrity file concerned, when there is one. */
  readonly file: string | undefined;

  constructor(code: ReadinessErrorCode, what: string, options: { hint?: string; file?: string; cause?: unknown } = {}) {
    super(options.hint ? `${what} (${options.hint})` : what, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ReadinessError';
    this.code = code;
    this.exitCode = exitCodes[code];
    this.hint = options.hint;
    this.file = options.file;
  }
}

// ---------------------------------------------------------------------------------------------
// The integrity file

interface IntegrityFile {
  path: string;
  size: number;
  sha256?: string;
  mtimeMs?: number;
}

interface IntegrityModel {
  name: string;
  model: string;
  version: string;
  resolved: string;
  manifest: string;
  path: string;
  tags: string[];
  size: number;
  files: IntegrityFile[];
}

interface Integrity {
  file: string;
  root: string;
  generator: string | undefined;
  models: IntegrityModel[];
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const MAX_INTEGRITY_BYTES = 64 * 1024 * 1024;
const PATH_MAX = 4096;
const NAME_MAX = 255;
const HINT_INSTALL = 'run: models install --frozen';
const HINT_REINSTALL = 'reinstall the app';

/** A file argument is used as is; anything else is the install root holding models.integrity.json. */
function locateIntegrityFile(integrityFileOrRoot: string): string {
  if (typeof integrityFileOrRoot !== 'string' || integrityFileOrRoot === '') {
    throw new ReadinessError('E_USAGE', 'checkModels/modelPath: expected the install root or its models.integrity.json path', {
      hint: 'pass the folder given to `models install --root`',
    });
  }
  const abs = resolve(integrityFileOrRoot);
  try {
    if (statSync(abs).isDirectory()) return join(abs, INTEGRITY_FILE);
  } catch {
    // Missing: a .json path is the file itself; anything else is a root, so the error names the file we expected.
    if (!abs.endsWith('.json')) return join(abs, INTEGRITY_FILE);
  }
  return abs;
}

function notInstalled(file: string, cause: unknown): ReadinessError {
  return new ReadinessError('E_NOT_INSTALLED', `models integrity file not found: ${file}`, {
    hint: `${HINT_INSTALL} --root ${dirname(file)} (developer machine), or ${HINT_REINSTALL}`,
    file,
    cause,
  });
}

function unreadable(file: string, cause: unknown): ReadinessError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const detail = code ?? (cause instanceof Error ? cause.message : String(cause));
  return new ReadinessError('E_INTEGRITY_FILE', `cannot read models integrity file ${file}: ${detail}`, {
    hint: `check the file's permissions, or ${HINT_REINSTALL}`,
    file,
    cause,
  });
}

function malformed(file: string, problem: string): ReadinessError {
  return new ReadinessError('E_INTEGRITY_FILE', `invalid models integrity file ${file}: ${problem}`, {
    hint: `${HINT_INSTALL} --root ${dirname(file)} to rewrite it, or ${HINT_REINSTALL}`,
    file,
  });
}

/**
 * The path rule of src/util/paths.ts, copied (this module imports only node: built-ins);
 * test/bounds.test.ts checks that both give the same answer for the same path.
 */
function checkRelativePath(path: unknown): string | undefined {
  if (typeof path !== 'string' || path.length === 0) return 'path is empty or not a string';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'path contains a control or NUL character';
  if (path.includes('\\')) return 'path contains a backslash';
  if (path.startsWith('/')) return 'path is absolute';
  if (/^[a-zA-Z]:/.test(path)) return 'path starts with a drive letter';
  const length = Buffer.byteLength(path, 'utf8');
  if (length >= PATH_MAX) return `path is ${length} bytes long, more than the ${PATH_MAX - 1} a file system allows`;
  for (const segment of path.split('/')) {
    if (segment === '') return 'path has an empty segment (leading, trailing or double slash)';
    if (segment === '.' || segment === '..') return `path has a "${segment}" segment`;
    const size = Buffer.byteLength(segment, 'utf8');
    if (size > NAME_MAX) return `a path segment is ${size} bytes long, more than the ${NAME_MAX} a file system allows`;
  }
  return undefined;
}

/** For tests: the copied rule, to compare with src/util/paths.ts. */
export const checkRelativePathForTest = checkRelativePath;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** JSON.parse reports "position N"; an editor wants line:column. */
function jsonProblem(text: string, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const match = /position (\d+)/.exec(message);
  if (!match) return `not valid JSON: ${message}`;
  const position = Number(match[1]);
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `not valid JSON at line ${line}, column ${column}: ${message.replace(/ in JSON at position \d+.*$/, '')}`;
}

function parseIntegrity(file: string, text: string): Integrity {
  let data: unknown;
  try {
    data = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (error) {
    throw malformed(file, jsonProblem(text, error));
  }
  if (!isRecord(data)) throw malformed(file, 'expected a JSON object');
  const version = data.integrityVersion;
  if (version !== INTEGRITY_VERSION) {
    if (typeof version === 'number' && Number.isInteger(version) && version > INTEGRITY_VERSION) {
      throw new ReadinessError(
        'E_INTEGRITY_FILE',
        `models integrity file ${file} has integrityVersion ${version}; this runtime reads version ${INTEGRITY_VERSION}`,
        { hint: 'upgrade xprim-models in the app, or install the models with the version the app ships', file },
      );
    }
    throw malformed(file, `integrityVersion must be ${INTEGRITY_VERSION} (got ${JSON.stringify(version)})`);
  }
  if (!isRecord(data.models)) throw malformed(file, '"models" must be an object of name -> entry');
  const root = dirname(file);
  const models: IntegrityModel[] = [];
  const folders = new Map<string, string>();
  for (const [name, entry] of Object.entries(data.models)) {
    models.push(parseModel(file, name, entry));
    // Two models in one folder would verify each other's files against the wrong list.
    const model = models[models.length - 1] as IntegrityModel;
    const key = model.path.toLowerCase();
    const other = folders.get(key);
    if (other !== undefined) throw malformed(file, `models.${name}.path "${model.path}" is also the path of "${other}"`);
    folders.set(key, name);
  }
  models.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { file, root, generator: typeof data.generator === 'string' ? data.generator : undefined, models };
}

function parseModel(file: string, name: string, entry: unknown): IntegrityModel {
  const at = `models.${JSON.stringify(name)}`;
  if (!NAME.test(name)) throw malformed(file, `${at}: a model name must match ${NAME.source}`);
  if (!isRecord(entry)) throw malformed(file, `${at}: expected an object`);
  const where = `models.${name}`;
  for (const key of ['model', 'version', 'resolved'] as const) {
    if (typeof entry[key] !== 'string' || entry[key] === '') throw malformed(file, `${where}.${key} must be a non-empty string`);
  }
  if (typeof entry.manifest !== 'string' || !SHA256_HEX.test(entry.manifest)) {
    throw malformed(file, `${where}.manifest must be 64 lowercase hex characters`);
  }
  const pathProblem = checkRelativePath(entry.path);
  if (pathProblem) throw malformed(file, `${where}.path ${JSON.stringify(entry.path)}: ${pathProblem}; it must stay inside ${dirname(file)}`);
  const tags = entry.tags ?? [];
  if (!Array.isArray(tags) || !tags.every((tag): tag is string => typeof tag === 'string' && tag !== '')) {
    throw malformed(file, `${where}.tags must be an array of non-empty strings`);
  }
  if (!Array.isArray(entry.files)) throw malformed(file, `${where}.files must be an array`);
  const seen = new Set<string>();
  const files = entry.files.map((f: unknown, i: number): IntegrityFile => {
    const fat = `${where}.files[${i}]`;
    if (!isRecord(f)) throw malformed(file, `${fat}: expected an object`);
    const problem = checkRelativePath(f.path);
    if (problem) throw malformed(file, `${fat}.path ${JSON.stringify(f.path)}: ${problem}; it must stay inside the model folder`);
    const path = f.path as string;
    if (!isSize(f.size)) throw malformed(file, `${fat} "${path}": size must be a non-negative integer`);
    if (f.sha256 !== undefined && (typeof f.sha256 !== 'string' || !SHA256_HEX.test(f.sha256))) {
      throw malformed(file, `${fat} "${path}": sha256 must be 64 lowercase hex characters`);
    }
    if (f.mtimeMs !== undefined && (typeof f.mtimeMs !== 'number' || !Number.isFinite(f.mtimeMs))) {
      throw malformed(file, `${fat} "${path}": mtimeMs must be a number`);
    }
    const key = path.toLowerCase();
    if (seen.has(key)) throw malformed(file, `${fat} "${path}" appears twice`);
    seen.add(key);
    return {
      path,
      size: f.size,
      ...(f.sha256 !== undefined ? { sha256: f.sha256 as string } : {}),
      ...(f.mtimeMs !== undefined ? { mtimeMs: f.mtimeMs as number } : {}),
    };
  });
  const size = entry.size === undefined ? files.reduce((sum, f) => sum + f.size, 0) : entry.size;
  if (!isSize(size)) throw malformed(file, `${where}.size must be a non-negative integer`);
  return {
    name,
    model: entry.model as string,
    version: entry.version as string,
    resolved: entry.resolved as string,
    manifest: entry.manifest,
    path: entry.path as string,
    tags: [...new Set(tags)],
    size,
    files,
  };
}

function readIntegritySync(integrityFileOrRoot: string): Integrity {
  const file = locateIntegrityFile(integrityFileOrRoot);
  let text: string;
  try {
    if (statSync(file).size > MAX_INTEGRITY_BYTES) throw malformed(file, 'file is too large');
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof ReadinessError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw notInstalled(file, error);
    throw unreadable(file, error);
  }
  return parseIntegrity(file, text);
}

async function readIntegrity(integrityFileOrRoot: string): Promise<Integrity> {
  const file = locateIntegrityFile(integrityFileOrRoot);
  let text: string;
  try {
    if ((await stat(file)).size > MAX_INTEGRITY_BYTES) throw malformed(file, 'file is too large');
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof ReadinessError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw notInstalled(file, error);
    throw unreadable(file, error);
  }
  return parseIntegrity(file, text);
}

/** The paths were validated, so this cannot leave the root lexically; symlinks are checked at check time. */
function absoluteFolder(integrity: Integrity, model: IntegrityModel): string {
  return join(integrity.root, ...model.path.split('/'));
}

/** The absolute install folder of one model. Synchronous, for start-up code that needs a path right away. */
export function modelPath(integrityFileOrRoot: string, name: string): string {
  const integrity = readIntegritySync(integrityFileOrRoot);
  const model = integrity.models.find((m) => m.name === name);
  if (!model) throw unknownName(integrity, name);
  return absoluteFolder(integrity, model);
}

function unknownName(integrity: Integrity, name: string): ReadinessError {
  const names = integrity.models.map((m) => m.name);
  const tags = [...new Set(integrity.models.flatMap((m) => m.tags))].sort();
  const known = names.length === 0 ? 'it lists no models' : `known: ${names.join(', ')}${tags.length ? `; tags: ${tags.join(', ')}` : ''}`;
  return new ReadinessError('E_UNKNOWN_MODEL', `no model named "${name}" in ${integrity.file} (${known})`, {
    hint: `add it to models.yaml and ${HINT_INSTALL}, or ${HINT_REINSTALL}`,
    file: integrity.file,
  });
}

// ---------------------------------------------------------------------------------------------
// Checking files

function aborted(signal: AbortSignal): ReadinessError {
  return new ReadinessError('E_ABORTED', 'model readiness check interrupted', { cause: signal.reason });
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

async function hashFile(path: string, signal: AbortSignal | undefined): Promise<string> {
  const hash = createHash('sha256');
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
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
  const mode = options.mode ?? 'fast';
  if (mode !== 'fast' && mode !== 'full') throw new ReadinessError('E_USAGE', `checkModels: mode must be "fast" or "full" (got ${JSON.stringify(mode)})`);
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ReadinessError('E_USAGE', `checkModels: concurrency must be a positive integer (got ${String(concurrency)})`);
  }
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

  const tasks: (() => Promise<FileReport>)[] = [];
  const slots: { model: IntegrityModel; folder: string; first: number }[] = [];
  for (const model of selected) {
    const folder = absoluteFolder(integrity, model);
    slots.push({ model, folder, first: tasks.length });
    for (const file of model.files) tasks.push(() => checkFile(ctx, folder, file));
  }
  // Fast mode is a stat per file: cheap, so more in flight; hashing is disk-bound, so the caller decides.
  const files = await pool(tasks, mode === 'full' ? concurrency : Math.max(concurrency, 16), signal);
  if (signal?.aborted) throw aborted(signal);

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

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

function select(integrity: Integrity, only: string[] | undefined): IntegrityModel[] {
  if (only === undefined) return integrity.models;
  if (!Array.isArray(only)) throw new ReadinessError('E_USAGE', 'checkModels: only must be an array of model names or tags');
  const chosen = new Set<IntegrityModel>();
  for (const key of only) {
    const matches = integrity.models.filter((m) => m.name === key || m.tags.includes(key));
    if (matches.length === 0) throw unknownName(integrity, key);
    for (const m of matches) chosen.add(m);
  }
  return integrity.models.filter((m) => chosen.has(m));
}

// ---------------------------------------------------------------------------------------------
// The plain-text report

function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
}

function hintFor(model: ModelReport, root: string): string {
  const reasons = model.files.filter((f) => f.state !== 'ready').map((f) => f.reason ?? '');
  const install = `${HINT_INSTALL} --root ${root}`;
  if (model.state === 'missing') return `${install} (developer machine), or ${HINT_REINSTALL}`;
  if (reasons.some((r) => r.startsWith('resolves outside'))) return `a symlink points outside ${root}; ${HINT_REINSTALL}`;
  if (reasons.some((r) => r.startsWith('mtime changed'))) {
    return `files were modified after install; run: models verify, then ${install} --verify, or ${HINT_REINSTALL}`;
  }
  return `${install} --verify to repair (developer machine), or ${HINT_REINSTALL}`;
}

const MAX_FILES_SHOWN = 5;

function renderText(
  integrity: Integrity,
  mode: 'fast' | 'full',
  ready: boolean,
  models: Record<string, ModelReport>,
  tags: Record<string, ModelState>,
): string {
  const list = Object.values(models);
  const bad = list.filter((m) => m.state !== 'ready');
  const lines: string[] = [];
  lines.push(
    ready
      ? `Models: READY (${list.length} of ${list.length} ready)`
      : `Models: NOT READY (${bad.length} of ${list.length} need attention)`,
  );
  lines.push(`integrity file: ${integrity.file}`);
  lines.push(`check: ${mode === 'full' ? 'full (sha256 of every file)' : 'fast (existence and size)'}${integrity.generator ? `; installed by ${integrity.generator}` : ''}`);
  lines.push('');
  if (list.length === 0) {
    lines.push('(no models)');
  } else {
    const rows = [['MODEL', 'STATE', 'SOURCE', 'VERSION', 'TAGS', 'PATH']];
    for (const m of list) {
      const version = m.resolved === m.version ? m.version : `${m.version} (${m.resolved})`;
      rows.push([m.name, m.state, m.model, version, m.tags.join(',') || '-', m.path]);
    }
    lines.push(...table(rows));
  }
  const tagNames = Object.keys(tags);
  if (tagNames.length > 0) {
    lines.push('');
    const rows = [['TAG', 'STATE', 'MODELS']];
    for (const tag of tagNames) {
      rows.push([tag, tags[tag] as ModelState, list.filter((m) => m.tags.includes(tag)).map((m) => m.name).join(',')]);
    }
    lines.push(...table(rows));
  }
  if (bad.length > 0) {
    lines.push('', 'Problems:');
    for (const m of bad) {
      const failing = m.files.filter((f) => f.state !== 'ready');
      lines.push(`  ${m.name}: ${m.state}`);
      if (failing.length === 0) lines.push(`    ${m.path}: folder not found`);
      for (const f of failing.slice(0, MAX_FILES_SHOWN)) lines.push(`    ${f.path}: ${f.reason ?? f.state}`);
      if (failing.length > MAX_FILES_SHOWN) lines.push(`    ... and ${failing.length - MAX_FILES_SHOWN} more`);
      lines.push(`    hint: ${hintFor(m, integrity.root)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
