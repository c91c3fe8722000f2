/**
 * What is already in place. The quick path answers "is everything installed?" from the install
 * records alone; the per-model check sorts locked targets into up to date and still to do.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelTarget } from './assemble.js';
import { extraneousModels, selectEntries, targetFor } from './entries.js';
import { lockMatchesRecord } from './lock-contract.js';
import { type InstallState, type InstalledModel, changedFiles, writeState } from './state.js';
import { type InstallEvent, type InstallOptions, type InstallResult, type ModelResult, resultFor } from './types.js';
import type { Lockfile, LockedModel } from '../project/lockfile.js';
import type { Project } from '../project/project.js';
import type { Store } from '../store/store.js';
import { sha256File } from '../util/hash.js';
import { forEachLimited } from '../util/pool.js';

/** A model still to install, with the files found missing or changed in place (to report as repaired). */
export interface PendingModel {
  target: ModelTarget;
  changed: string[];
}

/**
 * The quickest answer to "is everything in place?": when models.yaml and models.lock are byte for
 * byte the ones this root was installed from, the install records stand in for the lock (it is not
 * even parsed), and each file is one stat. Anything else falls through to the full install.
 */
export async function tryUpToDate(
  project: Project,
  root: string,
  state: InstallState,
  options: InstallOptions,
  emit: (event: InstallEvent) => void,
): Promise<Omit<InstallResult, 'durationMs'> | undefined> {
  const inputs = state.inputs;
  if (options.verify || !inputs || inputs.config !== project.digests.config || inputs.lock !== project.digests.lock) return undefined;
  const entries = selectEntries(project.config.models, options.only, options.platform);
  if (extraneousModels(project, Object.keys(state.models), options.only).length > 0) return undefined;
  const skipped: ModelResult[] = [];
  for (const entry of entries) {
    const installed = state.models[entry.name];
    if (!installed || installed.path !== entry.path) return undefined;
    const target = targetFor(project, root, entry, { ...installed, spec: '', files: [] });
    if ((await changedFiles(target.dest, installed)).length > 0) return undefined;
    skipped.push(resultFor(target, installed.size, 'up-to-date', 0, 0, 0, []));
  }
  for (const result of skipped) emit({ type: 'skipped', result });
  return { installed: [], skipped, removed: [], movedAside: [], leftInPlace: [], bytesDownloaded: 0, bytesFromCache: 0, root, lockWritten: false };
}


/**
 * Fast path per model: recorded, same manifest and path, every file's size and mtime unchanged
 * (and with --verify, every hash). Those are skipped (and reported); the rest are pending.
 */
export async function sortInPlace(
  targets: ModelTarget[],
  lock: Lockfile,
  state: InstallState,
  verify: boolean,
  emit: (event: InstallEvent) => void,
): Promise<{ skipped: ModelResult[]; pending: PendingModel[] }> {
  const skipped: ModelResult[] = [];
  const pending: PendingModel[] = [];
  for (const target of targets) {
    const installed = state.models[target.name];
    // A record that contradicts the lock is not "in place": the plan checks the lock against its manifest.
    if (!installed || installed.manifest !== target.manifest || installed.path !== target.path || !lockMatchesRecord(lock.models[target.name] as LockedModel, installed)) {
      pending.push({ target, changed: [] });
      continue;
    }
    let changed = await changedFiles(target.dest, installed);
    if (changed.length === 0 && verify) changed = await rehashChanged(target.dest, installed);
    if (changed.length > 0) {
      pending.push({ target, changed });
      continue;
    }
    const result = resultFor(target, installed.size, 'up-to-date', 0, 0, 0, []);
    skipped.push(result);
    emit({ type: 'skipped', result });
  }
  return { skipped, pending };
}

/** Everything is in place for these exact inputs: remember them, so the next run takes the quick path. */
export async function rememberInputs(project: Project, root: string, state: InstallState, only: string[] | undefined): Promise<void> {
  const lockDigest = project.digests.lock;
  if (lockDigest && !only?.length && (state.inputs?.config !== project.digests.config || state.inputs?.lock !== lockDigest)) {
    state.inputs = { config: project.digests.config, lock: lockDigest };
    await writeState(root, state).catch(() => undefined);
  }
}

/** A file changed in place through a hardlink changes the stored copy too: check it before reuse. */
export async function dropSuspectObjects(store: Store, dest: string, installed: InstalledModel, paths: string[]): Promise<void> {
  for (const path of paths) {
    const file = installed.files.find((f) => f.path === path);
    if (!file || file.size === 0) continue;
    const object = store.objectPath(file.sha256);
    const [placed, stored] = await Promise.all([stat(join(dest, path)).catch(() => undefined), stat(object).catch(() => undefined)]);
    if (!stored) continue;
    const sameInode = placed !== undefined && placed.ino === stored.ino && placed.dev === stored.dev;
    if (sameInode || Math.abs(stored.mtimeMs - file.mtimeMs) >= 1) {
      if ((await sha256File(object).catch(() => '')) !== file.sha256) await store.removeObject(file.sha256);
    }
  }
}

async function rehashChanged(dest: string, installed: InstalledModel): Promise<string[]> {
  const bad: string[] = [];
  await forEachLimited(installed.files, 4, async (f) => {
    if ((await sha256File(join(dest, f.path)).catch(() => '')) !== f.sha256) bad.push(f.path);
  });
  return bad.sort();
}
