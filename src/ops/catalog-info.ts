/**
 * `models list`, `models info`, `models path`: what is locked and installed (from models.lock and
 * `<root>/models.integrity.json`, with a stat-only check), and what a registry offers.
 */
import { own } from '../util/dictionary.js';
import { resolve } from 'node:path';
import { type ModelEntry, matchesPlatform, resolveRegistry } from '../project/config.js';
import { ModelsError } from '../util/errors.js';
import { type LockedModel, entrySpecHash } from '../project/lockfile.js';
import { adapterFor } from '../sources/index.js';
import type { Project } from '../project/project.js';
import { type Catalog, fetchCatalog, resolveVersion } from '../registry/catalog.js';
import { type ManifestLayout } from '../registry/manifest.js';
import { checkModels } from '../runtime/index.js';
import { Session, type SessionOptions } from '../project/session.js';
import { readState } from '../install/state.js';
import { GENERATOR } from '../util/version.js';
import { getManifest } from '../store/manifests.js';
import { lockMatchesRecord } from '../install/lock-contract.js';

export type InstallStatus = 'installed' | 'missing' | 'corrupt' | 'stale' | 'unlocked' | 'other-platform';

export interface ModelStatus {
  name: string;
  model: string;
  version: string;
  resolved?: string;
  manifest?: string;
  size?: number;
  files?: number;
  /** Absolute install folder. */
  path: string;
  status: InstallStatus;
  /** Which files are missing or wrong, or why. */
  detail?: string;
  registry: string;
}

/**
 * The fast install status of every entry: the lock against the install record, and a stat of each
 * recorded file (the runtime readiness check, in fast mode).
 */
export async function installStatuses(project: Project, options: { root?: string | undefined; platform?: { os: string; arch: string } } = {}): Promise<{ root: string; models: ModelStatus[] }> {
  const root = resolve(options.root ?? project.config.root);
  const platform = options.platform ?? { os: process.platform, arch: process.arch };
  const state = await readState(root, GENERATOR);
  let readiness: Awaited<ReturnType<typeof checkModels>> | undefined;
  let readinessProblem: string | undefined;
  if (Object.keys(state.models).length > 0) {
    try {
      readiness = await checkModels(root, { mode: 'fast' });
    } catch (error) {
      readinessProblem = (error as Error).message;
    }
  }
  const models = project.config.models.map((entry): ModelStatus => {
    const locked = own(project.lock?.models, entry.name);
    const base: ModelStatus = {
      name: entry.name,
      model: entry.model,
      version: entry.version,
      path: resolve(root, entry.path),
      status: 'missing',
      registry: entry.registry,
      ...(locked ? { resolved: locked.resolved, manifest: locked.manifest, size: locked.size, files: locked.files.length } : {}),
    };
    if (!matchesPlatform(entry, platform)) return { ...base, status: 'other-platform', detail: `not for ${platform.os}-${platform.arch}` };
    if (!locked || locked.spec !== entrySpecHash(entry)) return { ...base, status: 'unlocked', detail: 'not in models.lock, or changed since: run `models lock`' };
    const record = own(state.models, entry.name);
    if (!record) return { ...base, status: 'missing', detail: readinessProblem ?? 'not installed' };
    if (record.manifest !== locked.manifest || record.path !== entry.path) {
      return { ...base, status: 'stale', detail: `installed ${record.resolved} (${record.manifest.slice(0, 8)}), locked ${locked.resolved} (${locked.manifest.slice(0, 8)})` };
    }
    // The same verdict as install and verify: a lock whose files disagree with what its manifest installed is not "installed".
    if (!lockMatchesRecord(locked, record)) {
      return { ...base, status: 'stale', detail: `models.lock disagrees with the files of manifest ${locked.manifest.slice(0, 8)}: run \`models lock --update ${entry.name}\`` };
    }
    const report = own(readiness?.models, entry.name);
    if (!report) return { ...base, status: 'missing', detail: readinessProblem ?? 'not installed' };
    if (report.state === 'ready') return { ...base, status: 'installed' };
    const bad = report.files.filter((f) => f.state !== 'ready');
    const shown = bad.slice(0, 3).map((f) => `${f.path} (${f.reason ?? f.state})`).join(', ');
    const more = bad.length > 3 ? ` and ${bad.length - 3} more` : '';
    return { ...base, status: report.state === 'missing' ? 'missing' : 'corrupt', detail: bad.length ? `${shown}${more}` : 'folder not found' };
  });
  return { root, models };
}

/** `models path NAME`: the absolute folder of an installed model; E_NOT_INSTALLED (exit 4) otherwise. */
export async function modelFolder(project: Project, name: string, options: { root?: string | undefined } = {}): Promise<string> {
  const entry = project.config.models.find((m) => m.name === name);
  if (!entry) {
    throw new ModelsError('E_USAGE', `no model named "${name}" in ${project.config.file}`, { hint: `known: ${project.config.models.map((m) => m.name).join(', ') || '(none)'}` });
  }
  const { models } = await installStatuses(project, options);
  const status = models.find((m) => m.name === name) as ModelStatus;
  if (status.status === 'installed' || status.status === 'corrupt' || status.status === 'stale') return status.path;
  throw new ModelsError('E_NOT_INSTALLED', `${name} is not installed in ${status.path}${status.detail ? `: ${status.detail}` : ''}`, {
    hint: status.status === 'other-platform' ? `it is only for ${describeWhen(entry)}` : 'run `models install`',
  });
}

function describeWhen(entry: ModelEntry): string {
  return [entry.when?.os?.join('/'), entry.when?.arch?.join('/')].filter(Boolean).join(' on ') || 'other platforms';
}

// ---------------------------------------------------------------------------------------------
// The registry side

export interface RemoteVersion {
  registry: string;
  model: string;
  version: string;
  aliasOf?: string;
  manifest: string;
  metadata: Record<string, unknown>;
}

export interface RemoteOptions extends SessionOptions {
  /** A registry to read instead of the configured ones. */
  registry?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** The registries to read: --registry, else every distinct configured one. */
function registriesOf(project: Project | undefined, registry: string | undefined): string[] {
  if (registry) return [resolveRegistry(registry, project?.config.dir ?? process.cwd(), '--registry')];
  const urls = [...new Set(project?.config.models.map((m) => m.registryUrl) ?? [])];
  if (urls.length === 0) {
    throw new ModelsError('E_USAGE', 'no registry to read: models.yaml names none', { hint: 'pass --registry URL, or add models to models.yaml' });
  }
  return urls;
}

function versionsIn(catalog: Catalog, registry: string, only?: string): RemoteVersion[] {
  const rows: RemoteVersion[] = [];
  for (const [group, models] of Object.entries(catalog)) {
    for (const [name, versions] of Object.entries(models)) {
      const model = `${group}/${name}`;
      if (only && model !== only) continue;
      for (const [version, entry] of Object.entries(versions)) {
        const target = entry.alias_of !== undefined && Object.hasOwn(versions, entry.alias_of) ? versions[entry.alias_of] : undefined;
        const metadata = { ...(target?.metadata ?? {}), ...(entry.metadata ?? {}) };
        rows.push({ registry, model, version, ...(entry.alias_of !== undefined ? { aliasOf: entry.alias_of } : {}), manifest: entry.hash, metadata });
      }
    }
  }
  return rows.sort((a, b) => a.model.localeCompare(b.model) || a.version.localeCompare(b.version, undefined, { numeric: true }));
}

/** `models list --remote`: every model and version of the registry (or registries). */
export async function listRemote(project: Project | undefined, options: RemoteOptions = {}): Promise<RemoteVersion[]> {
  const session = new Session(project?.config, options);
  try {
    const rows: RemoteVersion[] = [];
    for (const registry of registriesOf(project, options.registry)) {
      const { catalog } = await fetchCatalog(session.clientFor(registry), registry, options.signal);
      rows.push(...versionsIn(catalog, registry));
    }
    return rows;
  } finally {
    await session.close();
  }
}

export interface InfoFile {
  path: string;
  size: number;
  sha256?: string;
}

export interface ModelInfo {
  kind: 'model';
  /** The local name, for a locked entry. */
  name?: string;
  model: string;
  version: string;
  resolved: string;
  registry: string;
  manifest: string;
  totalSize: number;
  chunkSize: number;
  chunks: number;
  files: InfoFile[];
  metadata?: Record<string, unknown>;
  /** For a locked entry: its install status. */
  install?: { status: InstallStatus; path: string; detail?: string };
  /** For a locked entry with --remote: what the registry resolves the entry to now. */
  latest?: { resolved: string; manifest: string };
}

export interface ModelVersions {
  kind: 'versions';
  model: string;
  registry: string;
  versions: RemoteVersion[];
}

export interface InfoOptions extends RemoteOptions {
  remote?: boolean | undefined;
  root?: string | undefined;
}

async function manifestOf(session: Session, registryUrl: string, hash: string, where: string, signal?: AbortSignal): Promise<ManifestLayout> {
  return (await getManifest(session.store, session.clientFor(registryUrl), hash, where, signal)).layout;
}

function describeLayout(layout: ManifestLayout): Pick<ModelInfo, 'totalSize' | 'chunkSize' | 'chunks' | 'files'> {
  return {
    totalSize: layout.totalSize,
    chunkSize: layout.manifest.chunk_size,
    chunks: layout.chunks.length,
    files: layout.files.map((f) => ({ path: f.path, size: f.size, ...(f.sha256 ? { sha256: f.sha256 } : {}) })),
  };
}

/**
 * `models info NAME` (a locked entry: the lock, the manifest, the install status; metadata from the
 * registry when it answers) or `models info GROUP/MODEL [VERSION]` (the registry: one version, or
 * the list of versions when none is given).
 */
export async function modelInfo(project: Project | undefined, what: string, version: string | undefined, options: InfoOptions = {}): Promise<ModelInfo | ModelVersions> {
  const entry = what.includes('/') ? undefined : project?.config.models.find((m) => m.name === what);
  if (!what.includes('/') && !entry) {
    throw new ModelsError('E_USAGE', `no model named "${what}" in ${project?.config.file ?? 'models.yaml'}`, {
      hint: `known: ${project?.config.models.map((m) => m.name).join(', ') || '(none)'}; for a registry model write GROUP/MODEL`,
    });
  }
  const session = new Session(project?.config, { ...options, ...(entry && !options.remote ? { retry: { attempts: 1 } } : {}) });
  try {
    if (entry) return await entryInfo(session, project as Project, entry, version, options);
    const registries = registriesOf(project, options.registry);
    const preferred = project?.config.models.find((m) => m.model === what)?.registryUrl;
    const registry = preferred && !options.registry ? preferred : (registries[0] as string);
    const { catalog, url } = await fetchCatalog(session.clientFor(registry), registry, options.signal);
    if (!version) {
      const versions = versionsIn(catalog, registry, what);
      if (versions.length === 0) resolveVersion(catalog, what, 'latest', url); // throws the not-found error with its hint
      return { kind: 'versions', model: what, registry, versions };
    }
    const resolution = resolveVersion(catalog, what, version, url);
    const layout = await manifestOf(session, registry, resolution.manifest, `${what}@${resolution.resolved}`, options.signal);
    return { kind: 'model', model: what, version, resolved: resolution.resolved, registry, manifest: resolution.manifest, ...describeLayout(layout), metadata: resolution.metadata };
  } finally {
    await session.close();
  }
}

async function entryInfo(session: Session, project: Project, entry: ModelEntry, version: string | undefined, options: InfoOptions): Promise<ModelInfo> {
  if (version !== undefined && version !== entry.version) {
    throw new ModelsError('E_USAGE', `${entry.name} is locked at version "${entry.version}" in models.yaml; to see ${version}, ask the registry`, {
      hint: `models info ${entry.model} ${version}`,
    });
  }
  const locked: LockedModel | undefined = own(project.lock?.models, entry.name);
  if (entry.kind !== 'xprim') return pinnedInfo(session, project, entry, locked, options);
  let catalogResult: { catalog: Catalog; url: string } | undefined;
  let catalogError: unknown;
  let now: ReturnType<typeof resolveVersion> | undefined;
  try {
    catalogResult = await fetchCatalog(session.clientFor(entry.registryUrl), entry.registryUrl, options.signal);
    now = resolveVersion(catalogResult.catalog, entry.model, entry.version, catalogResult.url);
  } catch (error) {
    // For a locked entry the registry is optional: the lock and the stored manifest say enough.
    catalogError = error;
  }
  if (!locked || locked.spec !== entrySpecHash(entry) || options.remote) {
    if (!now) throw catalogError;
    const layout = await manifestOf(session, entry.registryUrl, now.manifest, `${entry.model}@${now.resolved}`, options.signal);
    const statuses = locked ? await installStatuses(project, { root: options.root }) : undefined;
    const status = statuses?.models.find((m) => m.name === entry.name);
    return {
      kind: 'model',
      name: entry.name,
      model: entry.model,
      version: entry.version,
      resolved: now.resolved,
      registry: entry.registry,
      manifest: now.manifest,
      ...describeLayout(layout),
      metadata: now.metadata,
      ...(status ? { install: { status: status.status, path: status.path, ...(status.detail ? { detail: status.detail } : {}) } } : {}),
      ...(locked ? { latest: { resolved: now.resolved, manifest: now.manifest } } : {}),
    };
  }
  const layout = await manifestOf(session, entry.registryUrl, locked.manifest, `${entry.model}@${locked.resolved}`, options.signal);
  const status = (await installStatuses(project, { root: options.root })).models.find((m) => m.name === entry.name) as ModelStatus;
  // Metadata belongs to the locked version; an alias may have moved since.
  const metadata = catalogResult ? metadataOf(catalogResult.catalog, entry.model, locked.resolved) : undefined;
  return {
    kind: 'model',
    name: entry.name,
    model: locked.model,
    version: locked.version,
    resolved: locked.resolved,
    registry: locked.registry,
    manifest: locked.manifest,
    ...describeLayout(layout),
    ...(metadata ? { metadata } : {}),
    install: { status: status.status, path: status.path, ...(status.detail ? { detail: status.detail } : {}) },
    ...(now ? { latest: { resolved: now.resolved, manifest: now.manifest } } : {}),
  };
}

/** A url:, hf: or oci: entry: everything comes from the lock (its source says what is current with --remote). */
async function pinnedInfo(session: Session, project: Project, entry: ModelEntry, locked: LockedModel | undefined, options: InfoOptions): Promise<ModelInfo> {
  if (!locked || locked.spec !== entrySpecHash(entry)) {
    throw new ModelsError('E_USAGE', `${entry.name} is not in models.lock, or changed since`, { hint: 'run `models lock`' });
  }
  const adapter = adapterFor(entry.kind);
  const { layout } = await adapter.content({ session, store: session.store, signal: options.signal }, entry, locked);
  const status = (await installStatuses(project, { root: options.root })).models.find((m) => m.name === entry.name) as ModelStatus;
  const now = options.remote ? (await adapter.check({ session, signal: options.signal, memo: new Map() }, entry, locked)).latest : undefined;
  return {
    kind: 'model',
    name: entry.name,
    model: locked.model,
    version: locked.version,
    resolved: locked.resolved,
    registry: locked.registry,
    manifest: locked.manifest,
    ...describeLayout(layout),
    ...(locked.pin ? { metadata: { ...locked.pin } } : {}),
    install: { status: status.status, path: status.path, ...(status.detail ? { detail: status.detail } : {}) },
    ...(now ? { latest: now } : {}),
  };
}

function metadataOf(catalog: Catalog, model: string, version: string): Record<string, unknown> | undefined {
  const [group, name] = model.split('/') as [string, string];
  const entry = own(own(own(catalog, group), name), version);
  return entry ? (entry.metadata ?? {}) : undefined;
}
