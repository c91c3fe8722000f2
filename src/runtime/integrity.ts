/**
 * `<root>/models.integrity.json`, written by `models install`: located, read (bounded), and parsed
 * defensively: it ships inside an app, so a damaged or hostile one must fail with a clear message,
 * never lead a check outside the install root.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ReadinessError, malformed, notInstalled, unreadable } from './errors.js';
import { checkRelativePath } from './paths.js';

export const INTEGRITY_FILE = 'models.integrity.json';
export const INTEGRITY_VERSION = 1;

export interface IntegrityFile {
  path: string;
  size: number;
  sha256?: string;
  mtimeMs?: number;
}

export interface IntegrityModel {
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

export interface Integrity {
  file: string;
  root: string;
  generator: string | undefined;
  models: IntegrityModel[];
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const MAX_INTEGRITY_BYTES = 64 * 1024 * 1024;

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

export function readIntegritySync(integrityFileOrRoot: string): Integrity {
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

export async function readIntegrity(integrityFileOrRoot: string): Promise<Integrity> {
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
