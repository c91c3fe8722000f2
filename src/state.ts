/**
 * Install state: `<root>/models.integrity.json`, one record per installed model (lock entry, files,
 * sizes, sha256, mtimes). It lets a repeat install prove "everything is in place" with a stat per
 * file, and it is the integrity file an installer ships for the runtime readiness check
 * (`xprim-models/runtime`).
 */
import { dictionary } from './dictionary.js';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './fsutil.js';
import { INTEGRITY_FILE } from './runtime/index.js';
import { storageError } from './errors.js';

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

/** Read the state; a missing or unreadable one is empty (the next install rebuilds it). */
export async function readState(root: string, generator: string): Promise<InstallState> {
  try {
    const data = JSON.parse(await readFile(join(root, INTEGRITY_FILE), 'utf8')) as InstallState;
    if (data?.integrityVersion === 1 && typeof data.models === 'object' && data.models !== null) {
      return { ...data, generator, models: Object.assign(dictionary<InstalledModel>(), data.models) };
    }
  } catch {
    // rebuilt by the next install
  }
  return emptyState(generator);
}

export async function writeState(root: string, state: InstallState): Promise<void> {
  const sorted: Record<string, InstalledModel> = {};
  for (const name of Object.keys(state.models).sort()) sorted[name] = state.models[name] as InstalledModel;
  const path = join(root, INTEGRITY_FILE);
  try {
    await writeFileAtomic(path, `${JSON.stringify({ ...state, models: sorted }, null, 2)}\n`);
  } catch (error) {
    throw storageError(error, 'write', path);
  }
}

/** Files whose size or mtime differ from the record (or that are gone). Empty means "in place". */
export async function changedFiles(modelDir: string, installed: InstalledModel): Promise<string[]> {
  const changed: string[] = [];
  await Promise.all(
    installed.files.map(async (file) => {
      try {
        const info = await stat(join(modelDir, file.path));
        if (!info.isFile() || info.size !== file.size || Math.abs(info.mtimeMs - file.mtimeMs) >= 1) changed.push(file.path);
      } catch {
        changed.push(file.path);
      }
    }),
  );
  return changed.sort();
}
