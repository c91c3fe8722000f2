/**
 * Resolution: from models.yaml entries to hash-pinned lock entries (`models lock`), and the
 * comparison of the lock with what the registry resolves now (`models outdated`). Reads models.json
 * and manifests; never downloads a chunk.
 */
import { dictionary, own } from '../util/dictionary.js';
import type { ModelEntry } from './config.js';
import { ModelsError, isModelsError } from '../util/errors.js';
import { type LockedModel, type Lockfile, lockStatus, specHash, writeLockfile } from './lockfile.js';
import type { Project } from './project.js';
import { type Catalog, MAX_INDEX_BYTES, parseCatalog, resolveVersion } from '../registry/catalog.js';
import type { Session } from './session.js';
import { getManifest } from '../store/manifests.js';

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
}

export interface LockResult {
  lock: Lockfile;
  changes: LockChange[];
  removed: string[];
  written: boolean;
}

/** Fetch each registry's index once per run. */
class CatalogCache {
  private readonly catalogs = new Map<string, Promise<{ catalog: Catalog; url: string }>>();
  constructor(
    private readonly session: Session,
    private readonly signal?: AbortSignal,
  ) {}
  get(entry: ModelEntry): Promise<{ catalog: Catalog; url: string }> {
    let pending = this.catalogs.get(entry.registryUrl);
    if (!pending) {
      pending = this.session
        .clientFor(entry)
        .fetchSmall('models.json', `registry index of ${entry.registry}`, MAX_INDEX_BYTES, this.signal)
        .then(({ bytes, url }) => ({ catalog: parseCatalog(bytes, url), url }));
      this.catalogs.set(entry.registryUrl, pending);
    }
    return pending;
  }
}

export async function resolveEntry(session: Session, catalogs: CatalogCache, entry: ModelEntry, signal?: AbortSignal): Promise<LockedModel> {
  const { catalog, url } = await catalogs.get(entry);
  const resolution = resolveVersion(catalog, entry.model, entry.version, url);
  const { layout } = await getManifest(session.store, session.clientFor(entry), resolution.manifest, `${entry.name} (${entry.model}@${resolution.resolved})`, signal);
  return {
    spec: specHash(entry),
    model: entry.model,
    version: entry.version,
    resolved: resolution.resolved,
    registry: entry.registry,
    manifest: resolution.manifest,
    size: layout.totalSize,
    files: layout.files.map((f) => ({ path: f.path, size: f.size, ...(f.sha256 ? { sha256: f.sha256 } : {}) })),
  };
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

  const catalogs = new CatalogCache(session, options.signal);
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
        const locked = await resolveEntry(session, catalogs, entry, options.signal);
        models[entry.name] = locked;
        if (!previous || previous.manifest !== locked.manifest || previous.resolved !== locked.resolved) {
          changes.push({
            name: entry.name,
            model: entry.model,
            ...(previous ? { from: { resolved: previous.resolved, manifest: previous.manifest } } : {}),
            to: { resolved: locked.resolved, manifest: locked.manifest },
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

/** Compare each locked entry with what its registry resolves now. */
export async function outdated(session: Session, project: Project, signal?: AbortSignal): Promise<OutdatedEntry[]> {
  const catalogs = new CatalogCache(session, signal);
  const rows = await Promise.all(
    project.config.models.map(async (entry): Promise<OutdatedEntry> => {
      const locked = own(project.lock?.models, entry.name);
      const base = { name: entry.name, model: entry.model, requested: entry.version };
      const lockedInfo = locked ? { locked: { resolved: locked.resolved, manifest: locked.manifest } } : {};
      let now;
      try {
        const { catalog, url } = await catalogs.get(entry);
        now = resolveVersion(catalog, entry.model, entry.version, url);
      } catch (error) {
        if (isModelsError(error) && error.code === 'E_NOT_FOUND') return { ...base, ...lockedInfo, status: 'missing', detail: error.message };
        throw error;
      }
      const latest = { resolved: now.resolved, manifest: now.manifest };
      if (!locked || locked.spec !== specHash(entry)) return { ...base, ...lockedInfo, latest, status: 'unlocked', detail: 'run `models lock`' };
      if (locked.manifest === now.manifest && locked.resolved === now.resolved) return { ...base, ...lockedInfo, latest, status: 'current' };
      // Same version name, different bytes: a pinned version was replaced upstream.
      if (locked.resolved === now.resolved) {
        return { ...base, ...lockedInfo, latest, status: 'changed', detail: `${entry.model}@${now.resolved} now has manifest ${now.manifest.slice(0, 12)}; versions should be immutable — check with the registry owner before updating` };
      }
      return { ...base, ...lockedInfo, latest, status: 'outdated' };
    }),
  );
  return rows;
}
