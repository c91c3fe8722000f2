/**
 * Resolution: from models.yaml entries to pinned lock entries (`models lock`), each through its
 * source's adapter, and the comparison of the lock with what each source says now (`models outdated`).
 * Downloads nothing but what a source needs to pin (a `url:` without sha256 is fetched once).
 */
import { dictionary, own } from '../util/dictionary.js';
import { ModelsError, isModelsError } from '../util/errors.js';
import { type LockedModel, type Lockfile, entrySpecHash, lockStatus } from '../project/lockfile.js';
import { writeLockfile } from '../project/lock-writer.js';
import type { Project } from '../project/project.js';
import type { Session } from '../project/session.js';
import type { SourceContext } from './adapter.js';
import { adapterFor } from './index.js';

export interface LockOptions {
  /** `true`: re-resolve every entry; a list: re-resolve those names. */
  update?: boolean | string[];
  signal?: AbortSignal;
}

export interface LockChange {
  name: string;
  model: string;
  from?: { resolved: string; manifest: string };
  to: { resolved: string; manifest: string };
  /** Something resolving did that the user should hear, e.g. a url: pinned on first use. */
  note?: string;
}

export interface LockResult {
  lock: Lockfile;
  changes: LockChange[];
  removed: string[];
  written: boolean;
}

/** Resolve new, changed (and, with `update`, named) entries; drop removed ones; write models.lock if it changed. */
export async function lockProject(session: Session, project: Project, options: LockOptions = {}): Promise<LockResult> {
  const { config } = project;
  const names = new Set(config.models.map((m) => m.name));
  if (Array.isArray(options.update)) {
    for (const name of options.update) {
      if (!names.has(name)) {
        throw new ModelsError('E_USAGE', `no model named "${name}" in ${config.file}`, { hint: `known: ${[...names].join(', ') || '(none)'}` });
      }
    }
  }
  const status = lockStatus(config, project.lock);
  const wanted = new Set([...status.missing, ...status.stale]);
  if (options.update === true) config.models.forEach((m) => wanted.add(m.name));
  else if (Array.isArray(options.update)) options.update.forEach((n) => wanted.add(n));

  const ctx: SourceContext = { session, signal: options.signal, memo: new Map() };
  const models = dictionary<LockedModel>();
  const changes: LockChange[] = [];
  await Promise.all(
    config.models.map(async (entry) => {
      const previous = own(project.lock?.models, entry.name);
      if (!wanted.has(entry.name) && previous) {
        models[entry.name] = previous;
        return;
      }
      try {
        const { note, ...locked } = await adapterFor(entry.kind).resolve(ctx, entry, previous);
        models[entry.name] = locked;
        if (!previous || previous.manifest !== locked.manifest || previous.resolved !== locked.resolved) {
          changes.push({
            name: entry.name,
            model: entry.model,
            ...(previous ? { from: { resolved: previous.resolved, manifest: previous.manifest } } : {}),
            to: { resolved: locked.resolved, manifest: locked.manifest },
            ...(note ? { note } : {}),
          });
        }
      } catch (error) {
        if (isModelsError(error) && error.file === undefined) {
          throw new ModelsError(error.code, `${entry.name}: ${error.message}`, { ...(error.hint ? { hint: error.hint } : {}), file: config.file, line: entry.line, column: 3, cause: error });
        }
        throw error;
      }
    }),
  );
  const lock: Lockfile = { lockfileVersion: 1, models };
  const written = await writeLockfile(project.lockPath, lock);
  project.lock = lock;
  changes.sort((a, b) => a.name.localeCompare(b.name));
  return { lock, changes, removed: status.extra, written };
}

export type OutdatedStatus = 'current' | 'outdated' | 'changed' | 'missing' | 'unlocked';

export interface OutdatedEntry {
  name: string;
  model: string;
  requested: string;
  locked?: { resolved: string; manifest: string };
  latest?: { resolved: string; manifest: string };
  status: OutdatedStatus;
  detail?: string;
}

/** Compare each locked entry with what its source says now. */
export async function outdated(session: Session, project: Project, signal?: AbortSignal): Promise<OutdatedEntry[]> {
  const ctx: SourceContext = { session, signal, memo: new Map() };
  return Promise.all(
    project.config.models.map(async (entry): Promise<OutdatedEntry> => {
      const locked = own(project.lock?.models, entry.name);
      const base = { name: entry.name, model: entry.model, requested: entry.version };
      if (!locked || locked.spec !== entrySpecHash(entry) || (locked.kind ?? 'xprim') !== entry.kind) {
        return { ...base, ...(locked ? { locked: { resolved: locked.resolved, manifest: locked.manifest } } : {}), status: 'unlocked', detail: 'run `models lock`' };
      }
      const checked = await adapterFor(entry.kind).check(ctx, entry, locked);
      return { ...base, locked: { resolved: locked.resolved, manifest: locked.manifest }, ...checked };
    }),
  );
}
