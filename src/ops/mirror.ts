/**
 * `models mirror`: write a registry folder that holds exactly the locked models (their index
 * entries, manifests and chunks), for an air-gapped machine (`MODELS_MIRRORS=file:///media/disk/dir
 * models install --frozen --offline`) or to seed a CDN. Bytes come from the shared store when it has
 * them (chunks are rebuilt from stored files), else from the models' registries; every object is
 * verified against its hash before it lands. Incremental: an object already in the folder with the
 * right size (manifests: the right hash) is left alone, and the index is rewritten only on change.
 *
 * The steps, in this order so that an interrupted mirror never lists a model whose data is missing:
 *   planModels       each model's client and verified manifest (other kinds: their objects)
 *   copyChunks       every chunk not already there (src/ops/mirror/chunk-copy.ts)
 *   writeManifests
 *   writeIndex       models.json merged under the registry lock (src/ops/mirror/index-entries.ts)
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type ModelEntry, type SourceKind, resolveRegistry } from '../project/config.js';
import { adapterFor } from '../sources/index.js';
import { wholeFileLayout } from '../sources/whole-files.js';
import type { LockedModel } from '../project/lockfile.js';
import type { Project } from '../project/project.js';
import { Session, type SessionOptions } from '../project/session.js';
import type { RegistryClient } from '../registry/client.js';
import type { ChunkSpan, ManifestLayout } from '../registry/manifest.js';
import { getManifest } from '../store/manifests.js';
import { ModelsError, abortError, isModelsError } from '../util/errors.js';
import { ensureDir, writeFileAtomic } from '../util/fsutil.js';
import { sha256 } from '../util/hash.js';
import { type ChunkOrigin, type ChunkSource, mirrorChunk } from './mirror/chunk-copy.js';
import { Catalogs, indexEntries, mergeIndex } from './mirror/index-entries.js';
import { updateIndex } from './registry-index.js';

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
  /** xprim only: url:, hf: and oci: models have no XPRIM manifest or index entry, only objects. */
  manifestBytes?: Buffer;
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

/** One mirror run: where it writes, what it has done so far. */
interface Run {
  out: string;
  dataDir: string;
  session: Session;
  signal: AbortSignal | undefined;
  emit: (event: MirrorEvent) => void;
  result: MirrorResult;
}

/** Write a registry folder holding exactly the locked models (or the named ones). */
export async function mirror(project: Project, options: MirrorOptions): Promise<MirrorResult> {
  if (!options || typeof options.out !== 'string' || options.out === '') {
    throw new ModelsError('E_USAGE', 'models mirror: --out DIR is required', { hint: 'e.g. models mirror --out /media/usb/models-mirror' });
  }
  const selected = selectLocked(project, options.names);
  const out = resolve(options.out);
  const run: Run = {
    out,
    dataDir: join(out, 'data'),
    session: new Session(project.config, options),
    signal: options.signal,
    emit: options.onEvent ?? (() => undefined),
    result: { out, models: [], manifestsWritten: 0, chunksWritten: 0, bytesWritten: 0, chunksSkipped: 0, bytesFromCache: 0, bytesDownloaded: 0, indexWritten: false },
  };
  try {
    await ensureDir(run.dataDir);
    const planned = await planModels(run, project, selected);
    await copyChunks(run, planned);
    await writeManifests(run, planned);
    run.result.indexWritten = await writeIndex(run, planned);
  } catch (error) {
    if (run.signal?.aborted && !(isModelsError(error) && error.code === 'E_ABORTED')) throw abortError();
    throw error;
  } finally {
    await run.session.close();
  }
  return run.result;
}

/** Each selected model's client and manifest (from the store, else its registry), before any chunk is copied. */
async function planModels(run: Run, project: Project, selected: [string, LockedModel][]): Promise<Planned[]> {
  const planned: Planned[] = [];
  for (const [name, locked] of selected) {
    if (run.signal?.aborted) throw abortError();
    const entry = project.config.models.find((m) => m.name === name);
    if (locked.kind !== undefined && locked.kind !== 'xprim') {
      planned.push(await planObjects(run, name, entry, locked));
      continue;
    }
    const registryUrl = entry?.registryUrl ?? resolveRegistry(locked.registry, project.config.dir, `${project.lockPath}: ${name}.registry`);
    const client = run.session.clientFor(registryUrl);
    const { layout, bytes } = await getManifest(run.session.store, client, locked.manifest, labelOf(name, locked), run.signal);
    planned.push({ name, locked, client, registryUrl, layout, manifestBytes: bytes });
  }
  return planned;
}

/**
 * A model of another kind, as the objects an install fetches (`data/<sha256>`: each whole file, or
 * its archive), so MODELS_MIRRORS serves it too: every object is verified by its hash wherever it
 * comes from.
 */
async function planObjects(run: Run, name: string, entry: ModelEntry | undefined, locked: LockedModel): Promise<Planned> {
  const kind = locked.kind as SourceKind;
  const content = await adapterFor(kind).content({ session: run.session, store: run.session.store, signal: run.signal }, entry, locked);
  const archives = content.archive ? [content.archive] : [];
  const layout = archives.length > 0 ? wholeFileLayout(archives.map((a) => ({ path: a.name, size: a.size, sha256: a.sha256 })), locked.manifest) : content.layout;
  return { name, locked, client: content.client, registryUrl: '', layout };
}

function labelOf(name: string, locked: LockedModel): string {
  return `${name} (${locked.model}@${locked.resolved})`;
}

/** Model by model, `concurrency` chunks at a time; a chunk two models share is copied (and counted) for the first. */
async function copyChunks(run: Run, planned: Planned[]): Promise<void> {
  const { default: pLimit } = await import('p-limit');
  const limit = pLimit(run.session.concurrency);
  const seen = new Set<string>();
  for (const plan of planned) {
    const fresh = plan.layout.chunks.filter((chunk) => !seen.has(chunk.hash) && (seen.add(chunk.hash), true));
    await copyModelChunks(run, plan, fresh, limit);
  }
}

async function copyModelChunks(run: Run, plan: Planned, chunks: ChunkSpan[], limit: <T>(task: () => Promise<T>) => Promise<T>): Promise<void> {
  const { name, locked, layout, client } = plan;
  run.emit({ type: 'model', name, model: locked.model, resolved: locked.resolved, manifest: locked.manifest, size: layout.totalSize, chunks: layout.chunks.length });
  const mirrored: MirroredModel = { name, model: locked.model, version: locked.version, resolved: locked.resolved, manifest: locked.manifest, size: layout.totalSize, chunks: layout.chunks.length, chunksWritten: 0 };
  run.result.models.push(mirrored);
  const origin: ChunkOrigin = { store: run.session.store, client, dataDir: run.dataDir, layout, knownShas: await run.session.store.readKnownShas(locked.manifest), label: labelOf(name, locked) };
  // The first failure stops this model's other chunks; so does the caller's signal.
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  run.signal?.addEventListener('abort', onAbort, { once: true });
  const failures: unknown[] = [];
  const copyOne = async (chunk: ChunkSpan): Promise<void> => {
    if (controller.signal.aborted) return;
    try {
      const source = await mirrorChunk(origin, chunk, controller.signal);
      count(run.result, mirrored, chunk, source);
      run.emit({ type: 'chunk', hash: chunk.hash, size: chunk.size, source });
    } catch (error) {
      failures.push(error);
      controller.abort();
    }
  };
  try {
    await Promise.all(chunks.map((chunk) => limit(() => copyOne(chunk))));
  } finally {
    run.signal?.removeEventListener('abort', onAbort);
  }
  if (run.signal?.aborted) throw abortError();
  // The cause, not the chunks it aborted.
  const first = failures.find((e) => !(isModelsError(e) && e.code === 'E_ABORTED')) ?? failures[0];
  if (first) throw first;
}

function count(result: MirrorResult, mirrored: MirroredModel, chunk: ChunkSpan, source: ChunkSource): void {
  if (source === 'present') {
    result.chunksSkipped++;
    return;
  }
  if (source === 'cache') result.bytesFromCache += chunk.size;
  else result.bytesDownloaded += chunk.size;
  result.chunksWritten++;
  result.bytesWritten += chunk.size;
  mirrored.chunksWritten++;
}

/** Each manifest not already in data/ with the right hash. */
async function writeManifests(run: Run, planned: Planned[]): Promise<void> {
  for (const plan of planned) {
    if (!plan.manifestBytes) continue;
    const path = join(run.dataDir, plan.locked.manifest);
    const onDisk = await readFile(path).catch(() => undefined);
    if (onDisk && sha256(onDisk) === plan.locked.manifest) continue;
    await writeFileAtomic(path, plan.manifestBytes);
    run.result.manifestsWritten++;
    run.result.bytesWritten += plan.manifestBytes.byteLength;
  }
}

/** The models' entries merged into the folder's models.json under the registry lock; true when it changed. */
async function writeIndex(run: Run, planned: Planned[]): Promise<boolean> {
  const catalogs = new Catalogs(run.signal);
  const additions = await Promise.all(
    planned.filter((plan) => plan.manifestBytes).map(async (plan) => ({ model: plan.locked.model, entries: indexEntries(plan.locked, await catalogs.get(plan.registryUrl, plan.client)) })),
  );
  if (run.signal?.aborted) throw abortError();
  return updateIndex(run.out, (index) => mergeIndex(index, run.out, additions), run.session.env);
}
