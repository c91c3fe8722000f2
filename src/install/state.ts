/**
 * Install state: `<root>/models.integrity.json`, one record per installed model (lock entry, files,
 * sizes, sha256, mtimes). It lets a repeat install prove "everything is in place" with a stat per
 * file, and it is the integrity file an installer ships for the runtime readiness check
 * (`xprim-models/runtime`).
 */
import { lstatSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dictionary } from '../util/dictionary.js';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/fsutil.js';
import { forEachInBatches } from '../util/pool.js';
import { INTEGRITY_FILE } from '../runtime/index.js';
import { storageError } from '../util/errors.js';
import { isSha256 } from '../util/hash.js';
import { checkRelativePath } from '../registry/manifest.js';

export { INTEGRITY_FILE };

export interface InstalledFile {
  path: string;
  size: number;
  sha256: string;
  mtimeMs: number;
}

export interface InstalledModel {
  model: string;
  version: string;
  resolved: string;
  manifest: string;
  registry: string;
  path: string;
  tags: string[];
  size: number;
  files: InstalledFile[];
}

export interface InstallState {
  integrityVersion: 1;
  generator: string;
  /**
   * sha256 of the models.yaml and models.lock this root was last installed from. When both are
   * unchanged, a repeat install can trust these records without parsing the lock again.
   */
  inputs?: { config: string; lock: string };
  models: Record<string, InstalledModel>;
}

export function emptyState(generator: string): InstallState {
  return { integrityVersion: 1, generator, models: dictionary<InstalledModel>() };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function validFile(f: unknown): f is InstalledFile {
  return isObject(f) && typeof f.path === 'string' && checkRelativePath(f.path) === undefined && isCount(f.size) && isSha256(f.sha256) && Number.isFinite(f.mtimeMs);
}

/** A record the tool could have written: anything else is treated as absent (and rebuilt by hashing). */
function validModel(m: unknown): m is InstalledModel {
  if (!isObject(m) || !Array.isArray(m.files) || !m.files.every(validFile)) return false;
  if (typeof m.path !== 'string' || checkRelativePath(m.path) !== undefined || !isSha256(m.manifest)) return false;
  return ['model', 'version', 'resolved', 'registry'].every((k) => typeof m[k] === 'string') && isCount(m.size) && Array.isArray(m.tags);
}

/**
 * Read the state; a missing or unreadable one is empty, and a malformed record is dropped: the next
 * install proves by hashing what is on disk instead (see ownership.ts), then rewrites the state.
 */
export async function readState(root: string, generator: string): Promise<InstallState> {
  try {
    const data = JSON.parse(await readFile(join(root, INTEGRITY_FILE), 'utf8')) as Record<string, unknown>;
    if (data?.integrityVersion === 1 && isObject(data.models)) {
      const models = dictionary<InstalledModel>();
      for (const [name, record] of Object.entries(data.models)) if (validModel(record)) models[name] = record;
      const inputs = isObject(data.inputs) && typeof data.inputs.config === 'string' && typeof data.inputs.lock === 'string' ? { config: data.inputs.config, lock: data.inputs.lock } : undefined;
      // A dropped record invalidates the "inputs unchanged" shortcut: the tree must be looked at.
      const complete = Object.keys(models).length === Object.keys(data.models).length;
      return { integrityVersion: 1, generator, ...(inputs && complete ? { inputs } : {}), models };
    }
  } catch {
    // rebuilt by the next install
  }
  return emptyState(generator);
}

/**
 * The state as JSON, in pieces of about 64 KiB: models sorted by name, everything indented as
 * `JSON.stringify(…, null, 2)` would but each file on one line. With 100,000 files the document
 * is some 15 MB: written whole, it took three copies of that at once (string, concatenation, bytes).
 */
export function* stateText(state: InstallState): Generator<string> {
  const indent = (value: unknown, by: string) => JSON.stringify(value, null, 2).replace(/\n/g, `\n${by}`);
  const { models, ...head } = state;
  let out = `${indent(head, '').slice(0, -2)},\n  "models": {`;
  const names = Object.keys(models).sort();
  for (const [m, name] of names.entries()) {
    const { files, ...rest } = models[name] as InstalledModel;
    out += `${m > 0 ? ',' : ''}\n    ${JSON.stringify(name)}: ${indent(rest, '    ').slice(0, -6)},\n      "files": [`;
    for (const [i, file] of files.entries()) {
      out += `${i > 0 ? ',' : ''}\n        ${JSON.stringify(file)}`;
      if (out.length >= 65536) {
        yield out;
        out = '';
      }
    }
    out += `${files.length > 0 ? '\n      ' : ''}]\n    }`;
  }
  yield `${out}${names.length > 0 ? '\n  ' : ''}}\n}\n`;
}

export async function writeState(root: string, state: InstallState): Promise<void> {
  const path = join(root, INTEGRITY_FILE);
  try {
    await writeFileAtomic(path, stateText(state));
  } catch (error) {
    throw storageError(error, 'write', path);
  }
}

/**
 * Files whose size or mtime differ from the record (or that are gone). Empty means "in place".
 * Synchronous lstats in batches (see SYNC_BATCH): the no-op path is one stat per file.
 */
export async function changedFiles(modelDir: string, installed: InstalledModel): Promise<string[]> {
  const changed: string[] = [];
  await forEachInBatches(installed.files, (file) => {
    if (!inPlace(join(modelDir, file.path), file)) changed.push(file.path);
  });
  return changed.sort();
}

function inPlace(path: string, file: InstalledFile): boolean {
  try {
    const info = lstatSync(path, { throwIfNoEntry: false });
    return info !== undefined && info.isFile() && info.size === file.size && Math.abs(info.mtimeMs - file.mtimeMs) < 1;
  } catch {
    return false;
  }
}
