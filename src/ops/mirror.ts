/**
 * `models mirror`: write a registry folder that holds exactly the locked models (their index
 * entries, manifests and chunks), for an air-gapped machine (`MODELS_MIRRORS=file:///media/disk/dir
 * models install --frozen --offline`) or to seed a CDN. Bytes come from the shared store when it has
 * them (chunks are rebuilt from stored files), else from the models' registries; every object is
 * verified against its hash before it lands. Incremental: an object already in the folder with the
 * right size (manifests: the right hash) is left alone, and the index is rewritten only on change.
 *
 * Write order is chunks, then manifests, then models.json, so an interrupted mirror never lists a
 * model whose data is missing.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { resolveRegistry } from '../project/config.js';
import { ModelsError, abortError, isModelsError, storageError } from '../util/errors.js';
import { readSegments } from '../fetch/fetch.js';
import { ensureDir, writeFileAtomic } from '../util/fsutil.js';
import { sha256 } from '../util/hash.js';
import { TransientError, describeNetworkError } from '../net/http.js';
import type { LockedModel } from '../project/lockfile.js';
import type { Project } from '../project/project.js';
import { updateIndex } from './registry-index.js';
import { MAX_INDEX_BYTES, parseCatalog, type Catalog, type VersionEntry } from '../registry/catalog.js';
import type { RegistryClient } from '../registry/client.js';
import { type ChunkSpan, type ManifestLayout, filesOverlapping } from '../registry/manifest.js';
import { Session, type SessionOptions } from '../project/session.js';
import type { Segment, Store } from '../store/store.js';
import { getManifest } from '../store/manifests.js';

export interface MirrorOptions extends SessionOptions {
  /** The registry folder to write (created if missing). */
  out: string;
  /** Locked model names; default every locked model. */
  names?: string[] | undefined;
  signal?: AbortSignal | undefined;
  onEvent?: ((event: MirrorEvent) => void) | undefined;
}

export type MirrorEvent =
  | { type: 'model'; name: string; model: string; resolved: string; manifest: string; size: number; chunks: number }
  | { type: 'chunk'; hash: string; size: number; source: 'present' | 'cache' | 'registry' };

export interface MirroredModel {
  name: string;
  model: string;
  version: string;
  resolved: string;
  manifest: string;
  size: number;
  chunks: number;
  /** Chunks of this model this run wrote (a chunk shared with an earlier model counts there). */
  chunksWritten: number;
}

export interface MirrorResult {
  /** Absolute path of the registry folder. */
  out: string;
  models: MirroredModel[];
  manifestsWritten: number;
  chunksWritten: number;
  /** Bytes written under data/ (chunks and manifests). */
  bytesWritten: number;
  /** Chunks already in the folder with the right size. */
  chunksSkipped: number;
  /** Chunk bytes rebuilt from the shared store. */
  bytesFromCache: number;
  /** Chunk bytes read from a registry (network or folder). */
  bytesDownloaded: number;
  /** models.json was created or changed. */
  indexWritten: boolean;
}

interface Planned {
  name: string;
  locked: LockedModel;
  client: RegistryClient;
  registryUrl: string;
  layout: ManifestLayout;
  manifestBytes: Buffer;
}

function selectLocked(project: Project, names: string[] | undefined): [string, LockedModel][] {
  const lock = project.lock;
  if (!lock) {
    throw new ModelsError('E_FROZEN', `models mirror: ${project.lockPath} is missing`, {
      hint: 'run `models lock` first: the mirror holds exactly the locked models',
    });
  }
  const all = Object.keys(lock.models).sort();
  if (!names || names.length === 0) return all.map((n) => [n, lock.models[n] as LockedModel]);
  const unknown = names.filter((n) => !Object.hasOwn(lock.models, n));
  if (unknown.length > 0) {
    throw new ModelsError('E_USAGE', `models mirror: not in ${project.lockPath}: ${unknown.join(', ')}`, {
      hint: `locked models: ${all.join(', ') || '(none)'}; run \`models lock\` after adding a model to models.yaml`,
    });
  }
  return [...new Set(names)].sort().map((n) => [n, lock.models[n] as LockedModel]);
}

/** The manifest, verified against its hash: from the store, else the registry (and then cached). */
function loadManifest(store: Store, client: RegistryClient, name: string, locked: LockedModel, signal: AbortSignal | undefined): Promise<{ layout: ManifestLayout; bytes: Buffer }> {
  return getManifest(store, client, locked.manifest, `${name} (${locked.model}@${locked.resolved})`, signal);
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

function tempFor(dataDir: string, hash: string): string {
  return join(dataDir, `.${hash}.${process.pid}.${Math.random().toString(16).slice(2, 10)}.tmp`);
}

/** Streams bytes into a temp file while hashing; `commit` renames it into place if hash and size match. */
class ChunkSink {
  private hasher = createHash('sha256');
  written = 0;
  private constructor(
    private readonly handle: FileHandle,
    readonly temp: string,
  ) {}

  static async create(dataDir: string, hash: string): Promise<ChunkSink> {
    const temp = tempFor(dataDir, hash);
    try {
      return new ChunkSink(await open(temp, 'wx', 0o644), temp);
    } catch (error) {
      throw storageError(error, 'create', temp);
    }
  }

  async write(part: Uint8Array, limit: number): Promise<void> {
    if (this.written + part.byteLength > limit) throw new ChunkMismatch(`more than the ${limit} bytes declared`);
    this.hasher.update(part);
    let done = 0;
    while (done < part.byteLength) {
      const { bytesWritten } = await this.handle.write(part, done, part.byteLength - done, this.written + done);
      done += bytesWritten;
    }
    this.written += part.byteLength;
  }

  /** True when committed; false (temp removed) when the bytes are not the chunk. */
  async commit(path: string, hash: string, size: number): Promise<boolean> {
    const ok = this.written === size && this.hasher.digest('hex') === hash;
    try {
      if (ok) await this.handle.sync();
      await this.handle.close();
      if (!ok) {
        await unlink(this.temp).catch(() => undefined);
        return false;
      }
      await rename(this.temp, path);
      return true;
    } catch (error) {
      await unlink(this.temp).catch(() => undefined);
      throw storageError(error, 'write', path);
    }
  }

  async discard(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await unlink(this.temp).catch(() => undefined);
  }
}

class ChunkMismatch extends Error {}

/** Where a chunk's bytes sit in the store: its pointer, else the stored files of the model that holds it. */
async function storeCandidates(store: Store, layout: ManifestLayout, knownShas: Record<string, string>, chunk: ChunkSpan): Promise<Segment[][]> {
  const candidates: Segment[][] = [];
  const pointer = await store.readPointer(chunk.hash);
  if (pointer) candidates.push(pointer.map((s) => ({ path: store.objectPath(s.file), offset: s.offset, length: s.length })));
  const segments: Segment[] = [];
  for (const file of filesOverlapping(layout, chunk)) {
    const from = Math.max(chunk.offset, file.offset);
    const to = Math.min(chunk.offset + chunk.size, file.offset + file.size);
    if (to <= from) continue;
    const sha = file.sha256 ?? knownShas[file.path];
    if (!sha || !(await store.hasObject(sha, file.size))) return candidates;
    segments.push({ path: store.objectPath(sha), offset: from - file.offset, length: to - from });
  }
  candidates.push(segments);
  return candidates;
}

async function copyFromStore(candidates: Segment[][], dataDir: string, chunk: ChunkSpan, signal: AbortSignal | undefined): Promise<boolean> {
  for (const segments of candidates) {
    const sink = await ChunkSink.create(dataDir, chunk.hash);
    try {
      for await (const part of readSegments(segments)) {
        if (signal?.aborted) throw abortError();
        await sink.write(part, chunk.size);
      }
    } catch (error) {
      await sink.discard();
      if (isModelsError(error)) throw error;
      continue; // a stale pointer or a pruned file: try the next way
    }
    if (await sink.commit(join(dataDir, chunk.hash), chunk.hash, chunk.size)) return true;
  }
  return false;
}

async function fetchFromRegistry(client: RegistryClient, dataDir: string, chunk: ChunkSpan, label: string, signal: AbortSignal | undefined): Promise<void> {
  const what = `chunk ${chunk.hash.slice(0, 12)} of ${label}`;
  const path = join(dataDir, chunk.hash);
  let lastUrl = '';
  for (let attempt = 0; ; attempt++) {
    const committed = await client.request(
      what,
      async (source) => {
        const opened = await source.open(`data/${chunk.hash}`, signal ? { signal } : {});
        if (!opened) return undefined;
        lastUrl = opened.url;
        const sink = await ChunkSink.create(dataDir, chunk.hash);
        try {
          for await (const part of opened.body) await sink.write(part, chunk.size);
        } catch (error) {
          opened.destroy();
          await sink.discard();
          if (error instanceof ChunkMismatch) return false;
          if (isModelsError(error) || signal?.aborted) throw error;
          throw new TransientError(describeNetworkError(error), opened.url);
        }
        return sink.commit(path, chunk.hash, chunk.size);
      },
      signal,
    );
    if (committed) return;
    if (attempt >= client.policy.integrityRetries) {
      throw new ModelsError('E_INTEGRITY', `${what}: bytes from ${lastUrl} do not match the chunk hash, ${attempt + 1} times`, {
        hint: 'the registry or a proxy serves corrupt bytes; try another mirror or report it to the registry owner',
      });
    }
  }
}

/** The source registry's index entry for a version, when the index is readable and agrees with the lock. */
class Catalogs {
  private readonly pending = new Map<string, Promise<Catalog | undefined>>();
  constructor(private readonly signal: AbortSignal | undefined) {}

  get(registryUrl: string, client: RegistryClient): Promise<Catalog | undefined> {
    let entry = this.pending.get(registryUrl);
    if (!entry) {
      // Best effort: metadata is a nicety, and a frozen install never reads the index.
      entry = client
        .fetchSmall('models.json', `registry index of ${registryUrl}`, MAX_INDEX_BYTES, this.signal)
        .then(({ bytes, url }) => parseCatalog(bytes, url))
        .catch(() => {
          if (this.signal?.aborted) throw abortError();
          return undefined;
        });
      this.pending.set(registryUrl, entry);
    }
    return entry;
  }
}

function indexEntries(locked: LockedModel, catalog: Catalog | undefined): [string, VersionEntry][] {
  const [group, name] = locked.model.split('/') as [string, string];
  const versions = catalog && Object.hasOwn(catalog, group) && Object.hasOwn(catalog[group] as object, name) ? catalog[group]?.[name] : undefined;
  const source = versions && Object.hasOwn(versions, locked.resolved) ? versions[locked.resolved] : undefined;
  const concrete: VersionEntry = { hash: locked.manifest };
  if (source && source.hash === locked.manifest && source.alias_of === undefined && source.metadata && Object.keys(source.metadata).length > 0) {
    // Copied as is: another publisher's metadata values need not be strings.
    concrete.metadata = source.metadata;
  }
  const entries: [string, VersionEntry][] = [[locked.resolved, concrete]];
  if (locked.version !== locked.resolved) entries.push([locked.version, { hash: locked.manifest, alias_of: locked.resolved }]);
  return entries;
}

function conflict(out: string, model: string, version: string, detail: string): ModelsError {
  return new ModelsError('E_USAGE', `mirror ${join(out, 'models.json')}: ${model} ${version} ${detail}`, {
    hint: 'versions are immutable: mirror into a fresh --out folder, or remove that entry from its models.json',
  });
}

/** Merge the entries into the index; aliases may move, versions may not change. */
function mergeIndex(index: Catalog, out: string, additions: { model: string; entries: [string, VersionEntry][] }[]): void {
  const setThisRun = new Map<string, string>();
  for (const { model, entries } of additions) {
    const [group, name] = model.split('/') as [string, string];
    const versions = ((index[group] ??= {})[name] ??= {});
    for (const [version, entry] of entries) {
      const key = `${model}@${version}`;
      const earlier = setThisRun.get(key);
      if (earlier !== undefined && earlier !== entry.hash) throw conflict(out, model, version, `is locked to two different manifests (${earlier.slice(0, 12)}, ${entry.hash.slice(0, 12)})`);
      setThisRun.set(key, entry.hash);
      const existing = Object.hasOwn(versions, version) ? versions[version] : undefined;
      if (entry.alias_of !== undefined) {
        if (existing && existing.alias_of === undefined) throw conflict(out, model, version, 'is a version in the mirror, but an alias in the lock');
        versions[version] = entry;
        continue;
      }
      if (!existing) {
        versions[version] = entry;
      } else if (existing.alias_of !== undefined) {
        throw conflict(out, model, version, `is an alias in the mirror, but a version in the lock`);
      } else if (existing.hash !== entry.hash) {
        throw conflict(out, model, version, `is already in the mirror with manifest ${existing.hash}; the lock has ${entry.hash}`);
      } else if (existing.metadata === undefined && entry.metadata !== undefined) {
        existing.metadata = entry.metadata;
      }
    }
  }
}

/** Write a registry folder holding exactly the locked models (or the named ones). */
export async function mirror(project: Project, options: MirrorOptions): Promise<MirrorResult> {
  if (!options || typeof options.out !== 'string' || options.out === '') {
    throw new ModelsError('E_USAGE', 'models mirror: --out DIR is required', { hint: 'e.g. models mirror --out /media/usb/models-mirror' });
  }
  const selected = selectLocked(project, options.names);
  const out = resolve(options.out);
  const dataDir = join(out, 'data');
  const { signal } = options;
  const emit = options.onEvent ?? (() => undefined);
  const session = new Session(project.config, options);
  const result: MirrorResult = {
    out,
    models: [],
    manifestsWritten: 0,
    chunksWritten: 0,
    bytesWritten: 0,
    chunksSkipped: 0,
    bytesFromCache: 0,
    bytesDownloaded: 0,
    indexWritten: false,
  };
  try {
    await ensureDir(dataDir);
    const planned: Planned[] = [];
    for (const [name, locked] of selected) {
      if (signal?.aborted) throw abortError();
      const entry = project.config.models.find((m) => m.name === name);
      const registryUrl = entry?.registryUrl ?? resolveRegistry(locked.registry, project.config.dir, `${project.lockPath}: ${name}.registry`);
      const client = session.clientFor(registryUrl);
      const { layout, bytes } = await loadManifest(session.store, client, name, locked, signal);
      planned.push({ name, locked, client, registryUrl, layout, manifestBytes: bytes });
    }

    const { default: pLimit } = await import('p-limit');
    const limit = pLimit(session.concurrency);
    const seen = new Set<string>();
    for (const plan of planned) {
      const { name, locked, layout, client } = plan;
      emit({ type: 'model', name, model: locked.model, resolved: locked.resolved, manifest: locked.manifest, size: layout.totalSize, chunks: layout.chunks.length });
      const knownShas = await session.store.readKnownShas(locked.manifest);
      const mirrored: MirroredModel = { name, model: locked.model, version: locked.version, resolved: locked.resolved, manifest: locked.manifest, size: layout.totalSize, chunks: layout.chunks.length, chunksWritten: 0 };
      result.models.push(mirrored);
      const label = `${name} (${locked.model}@${locked.resolved})`;
      const controller = new AbortController();
      const onAbort = () => controller.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const failures: unknown[] = [];
      try {
        await Promise.all(
          layout.chunks
            .filter((chunk) => !seen.has(chunk.hash) && (seen.add(chunk.hash), true))
            .map((chunk) =>
              limit(async () => {
                if (controller.signal.aborted) return;
                try {
                  const path = join(dataDir, chunk.hash);
                  if ((await sizeOf(path)) === chunk.size) {
                    result.chunksSkipped++;
                    emit({ type: 'chunk', hash: chunk.hash, size: chunk.size, source: 'present' });
                    return;
                  }
                  const candidates = await storeCandidates(session.store, layout, knownShas, chunk);
                  let source: 'cache' | 'registry' = 'cache';
                  if (await copyFromStore(candidates, dataDir, chunk, controller.signal)) {
                    result.bytesFromCache += chunk.size;
                  } else {
                    await fetchFromRegistry(client, dataDir, chunk, label, controller.signal);
                    result.bytesDownloaded += chunk.size;
                    source = 'registry';
                  }
                  result.chunksWritten++;
                  result.bytesWritten += chunk.size;
                  mirrored.chunksWritten++;
                  emit({ type: 'chunk', hash: chunk.hash, size: chunk.size, source });
                } catch (error) {
                  failures.push(error);
                  controller.abort();
                }
              }),
            ),
        );
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
      if (signal?.aborted) throw abortError();
      const first = failures.find((e) => !(isModelsError(e) && e.code === 'E_ABORTED')) ?? failures[0];
      if (first) throw first;
    }

    for (const plan of planned) {
      const path = join(dataDir, plan.locked.manifest);
      const onDisk = await readFile(path).catch(() => undefined);
      if (onDisk && sha256(onDisk) === plan.locked.manifest) continue;
      await writeFileAtomic(path, plan.manifestBytes);
      result.manifestsWritten++;
      result.bytesWritten += plan.manifestBytes.byteLength;
    }

    const catalogs = new Catalogs(signal);
    const additions = await Promise.all(
      planned.map(async (plan) => ({ model: plan.locked.model, entries: indexEntries(plan.locked, await catalogs.get(plan.registryUrl, plan.client)) })),
    );
    if (signal?.aborted) throw abortError();
    result.indexWritten = await updateIndex(out, (index) => mergeIndex(index, out, additions), session.env);
  } catch (error) {
    if (signal?.aborted && !(isModelsError(error) && error.code === 'E_ABORTED')) throw abortError();
    throw error;
  } finally {
    await session.close();
  }
  return result;
}
