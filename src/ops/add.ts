/**
 * `models add SOURCE` and `models remove NAME...`, as `cargo add` / `npm install` and `npm
 * uninstall` do: edit models.yaml keeping its comments and layout, lock, and install (or remove
 * the installed folder). A failed lock leaves models.yaml as it was.
 */
import { readFile, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ModelsError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fsutil.js';
import { dictionary } from '../util/dictionary.js';
import { type Project, loadProject } from '../project/project.js';
import { NEW_CONFIG, addEntry, removeEntries } from '../project/yaml-edit.js';
import type { LockedModel } from '../project/lockfile.js';
import { writeLockfile } from '../project/lock-writer.js';
import { Session, type SessionOptions } from '../project/session.js';
import { lockTimeoutFrom } from '../project/settings.js';
import { type LockResult, lockProject } from '../sources/lock-project.js';
import { install } from '../install/install.js';
import type { InstallOptions, InstallResult } from '../install/types.js';
import { type UninstallResult, uninstall } from '../install/uninstall.js';
import { type AddRequest, entryFor } from './add-source.js';

export type { AddRequest } from './add-source.js';

export interface AddOptions extends InstallOptions {
  /** Lock only: do not install. */
  noInstall?: boolean;
}

export interface AddResult {
  name: string;
  entry: Record<string, unknown>;
  lock: LockResult;
  install?: InstallResult;
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelsError('E_CONFIG', `${file}: cannot read: ${(error as Error).message}`, { file });
  }
}

export async function add(configPath: string, request: AddRequest, options: AddOptions = {}): Promise<AddResult> {
  const file = resolve(configPath);
  const before = await readText(file);
  const { name, entry } = entryFor(request);
  const edited = addEntry(before ?? NEW_CONFIG, file, name, entry);
  await writeFileAtomic(file, edited.text);
  let project: Project;
  let locked: LockResult;
  try {
    project = await loadProject(file);
    const session = new Session(project.config, options);
    try {
      locked = await lockProject(session, project, options.signal ? { signal: options.signal } : {});
    } finally {
      await session.close();
    }
  } catch (error) {
    // Nothing half-added: models.yaml goes back to what it was.
    if (before === undefined) await rm(file, { force: true });
    else await writeFileAtomic(file, before);
    throw error;
  }
  if (options.noInstall) return { name, entry, lock: locked };
  return { name, entry, lock: locked, install: await install(project, { ...options, only: [name] }) };
}

export interface RemoveOptions extends SessionOptions {
  root?: string;
}

export interface RemoveResult extends UninstallResult {
  names: string[];
}

export async function remove(configPath: string, names: string[], options: RemoveOptions = {}): Promise<RemoveResult> {
  const file = resolve(configPath);
  const text = await readText(file);
  if (text === undefined) throw new ModelsError('E_CONFIG', `${file}: no models.yaml found`, { file, hint: 'run it in the project folder, or pass --config' });
  const project = await loadProject(file);
  const edited = removeEntries(text, file, names);
  if (project.lock) {
    const models = dictionary<LockedModel>();
    for (const [name, locked] of Object.entries(project.lock.models)) if (!names.includes(name)) models[name] = locked;
    await writeLockfile(project.lockPath, { lockfileVersion: 1, models });
  }
  await writeFileAtomic(file, edited.text);
  const root = resolve(options.root ?? project.config.root);
  const gone = await uninstall(root, names, lockTimeoutFrom(options.env ?? process.env, 10 * 60 * 1000));
  return { names, ...gone };
}
