/**
 * `models remove`: delete removed models' folders from an install root, only what their install
 * records say the tool wrote and still unchanged (ownership.ts), under the root's lock; the record
 * goes from the root's state either way.
 */
import { join, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { acquireLock } from '../store/locks.js';
import { GENERATOR } from '../util/version.js';
import { removeRecorded } from './ownership.js';
import { readState, writeState } from './state.js';

export interface UninstallResult {
  removed: { name: string; path: string }[];
  /** Files not provably written by the tool (changed, or never recorded): kept. */
  leftInPlace: string[];
}

export async function uninstall(root: string, names: string[], lockTimeoutMs: number): Promise<UninstallResult> {
  const result: UninstallResult = { removed: [], leftInPlace: [] };
  if (!(await stat(root).then((i) => i.isDirectory(), () => false))) return result;
  const release = await acquireLock(join(root, '.xprim-install'), `the install root ${root}`, lockTimeoutMs);
  try {
    const state = await readState(root, GENERATOR);
    for (const name of names) {
      const record = state.models[name];
      if (!record) continue;
      result.leftInPlace.push(...(await removeRecorded(root, record)));
      delete state.models[name];
      result.removed.push({ name, path: resolve(root, record.path) });
    }
    delete state.inputs; // models.yaml changed: the next install looks at the tree
    if (result.removed.length > 0) await writeState(root, state);
  } finally {
    await release();
  }
  return result;
}
