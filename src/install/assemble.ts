/**
 * Installing one model: plan where every file's bytes will come from (the store, the files already
 * in place, or the network), fetch the missing chunks straight into partial files, verify each file,
 * move it into the store, link the complete model into a staging folder beside the destination, and
 * promote it with renames, so the destination is always the complete old model or the complete new one.
 */
import { isInside } from '../util/paths.js';
import { linkSync, statSync } from 'node:fs';
import { lstat, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, relative, sep } from 'node:path';
import type { LimitFunction } from 'p-limit';
import { ModelsError, isModelsError, storageError } from '../util/errors.js';
import { fsyncDir } from '../util/fsutil.js';
import { FS_CONCURRENCY, forEachInBatches, forEachLimited } from '../util/pool.js';
import { debugLog } from '../util/log.js';
import type { ByteSource } from '../fetch/fetch.js';
import type { RateLimiter } from '../fetch/rate-limit.js';
import type { FileHasher } from '../store/file-hasher.js';
import { EMPTY_SHA256, sha256File } from '../util/hash.js';
import { acquireLock } from '../store/locks.js';
import type { RegistryClient } from '../registry/client.js';
import { type ArchiveContent, type ModelContent, archivesOf } from '../sources/index.js';
import type { SourceKind } from '../project/config.js';
import { extractMissing } from './extract-archive.js';
import { fetchMissing } from './fetch-missing.js';
import { foreignError, ownershipOf, replacedPath } from './ownership.js';
import { type FileSpan, type ManifestLayout, chunksOverlapping } from '../registry/manifest.js';
import type { InstalledFile, InstalledModel } from './state.js';
import { type LinkMode, type ObjectIdentity, type Store, cloneOrCopy, hardlinkIfAllowed, objectIdentityOf } from '../store/store.js';

export interface ModelTarget {
  name: string;
  kind: SourceKind;
  model: string;
  version: string;
  resolved: string;
  registry: string;
  manifest: string;
  path: string;
  tags: string[];
  /** Absolute destination folder. */
  dest: string;
}

export interface AssembleEnv {
  store: Store;
  client: RegistryClient;
  limit: LimitFunction;
  /** Whole files of at least twice this many bytes are fetched as concurrent ranges (MODELS_RANGE_SIZE). */
  rangeSize: number;
  linkMode: LinkMode;
  root: string;
  lockTimeoutMs: number;
  rate?: RateLimiter | undefined;
  signal?: AbortSignal | undefined;
  /** The current record of this model, when it was installed before (adoptable files). */
  previous?: InstalledModel | undefined;
  /** --verify: re-hash files in place instead of trusting size + mtime. */
  verifyInPlace: boolean;
  /** Hashes files while they are assembled (a worker thread for big installs). */
  hasher: FileHasher;
  /** --force: a destination the tool did not write is moved aside (reported here) instead of refused. */
  force?: boolean | undefined;
  onMovedAside?: ((dest: string, aside: string) => void) | undefined;
  /** Something the user must hear about (a stored file found changed in place), not an error. */
  onWarning?: ((message: string) => void) | undefined;
  onBytes: (bytes: number, source: ByteSource) => void;
}

/** Where a file's bytes come from: nowhere (empty), the store, the file in place, the network, or the model's archive. */
export type FileSource = { kind: 'empty' } | { kind: 'store'; sha: string } | { kind: 'adopt'; sha: string; path: string } | { kind: 'fetch' } | { kind: 'extract' };
// Shared by every file they describe (sources are replaced, never changed): not one object per file.
const EMPTY: FileSource = Object.freeze({ kind: 'empty' });
const FETCH: FileSource = Object.freeze({ kind: 'fetch' });
const EXTRACT: FileSource = Object.freeze({ kind: 'extract' });

export interface ModelPlan {
  target: ModelTarget;
  /** What the model's source says its bytes are and where they come from. */
  content: ModelContent;
  layout: ManifestLayout;
  /** sha256 per file index, where known before fetching. */
  shas: (string | undefined)[];
  sources: FileSource[];
  /** Bytes of files that must be fetched (network or chunk pointers). */
  neededBytes: number;
  /** Bytes of the chunks that hold them: what the fetch really brings in (whole chunks, each once). */
  fetchBytes: number;
}

/** Decide, per file, where its bytes come from. Reads only metadata (stat), never file contents, unless verifying. */
export async function planModel(env: AssembleEnv, target: ModelTarget, content: ModelContent): Promise<ModelPlan> {
  const { layout } = content;
  const known = await env.store.readKnownShas(target.manifest);
  const identities = await env.store.readIdentities(target.manifest);
  const previous = env.previous?.manifest === target.manifest && env.previous.path === target.path ? env.previous : undefined;
  const previousFiles = new Map((previous?.files ?? []).map((f) => [f.path, f]));
  const shas = layout.files.map((f) => f.sha256 ?? known[f.path] ?? previousFiles.get(f.path)?.sha256);
  // One lstat per file decides most (models of thousands of files are common); a stored file to
  // re-hash, or a file that may be reused in place, takes the slower path.
  const sources = new Array<FileSource>(layout.files.length);
  const unsure: FileSpan[] = [];
  await forEachInBatches(layout.files, (file) => {
    const quick = quickSourceFor(env, file, shas[file.index], previousFiles.get(file.path), identities);
    if (quick) sources[file.index] = quick;
    else unsure.push(file);
  });
  await forEachLimited(unsure, FS_CONCURRENCY, async (file) => {
    sources[file.index] = await sourceFor(env, target, file, shas[file.index], previousFiles.get(file.path), identities);
  });
  // Files of an archive come out of it, not from chunks of their own.
  const archives = archivesOf(content);
  for (const archive of archives) {
    const files = archive.files ? new Set(archive.files) : undefined;
    layout.files.forEach((f) => sources[f.index]?.kind === 'fetch' && (!files || files.has(f.path)) && (sources[f.index] = EXTRACT));
  }
  const neededBytes = layout.files.reduce((sum, file) => sum + (sources[file.index]?.kind === 'fetch' || sources[file.index]?.kind === 'extract' ? file.size : 0), 0);
  for (const file of layout.files) {
    const kind = sources[file.index]?.kind;
    if (kind === 'store') debugLog(`cache hit: ${target.name}: ${file.path} (${file.size} bytes) is in the store`);
    else if (kind === 'adopt') debugLog(`in place: ${target.name}: ${file.path} is reused as installed`);
  }
  let fetchBytes = chunkBytesFor(layout, sources);
  for (const archive of archives) fetchBytes += await archiveBytesFor(env, archive, layout, sources);
  return { target, content, layout, shas, sources, neededBytes, fetchBytes };
}

/** The archive is fetched when a file must come out of it and the store does not hold it. */
async function archiveBytesFor(env: AssembleEnv, archive: ArchiveContent & { files?: string[] }, layout: ManifestLayout, sources: FileSource[]): Promise<number> {
  const files = archive.files ? new Set(archive.files) : undefined;
  if (!layout.files.some((f) => sources[f.index]?.kind === 'extract' && (!files || files.has(f.path)))) return 0;
  return (await env.store.hasObject(archive.sha256, archive.size)) ? 0 : archive.size;
}

/** The size of every chunk that holds a byte of a file to fetch, each chunk counted once. */
function chunkBytesFor(layout: ManifestLayout, sources: FileSource[]): number {
  const seen = new Set<number>();
  let bytes = 0;
  for (const file of layout.files) {
    if (sources[file.index]?.kind !== 'fetch') continue;
    for (const chunk of chunksOverlapping(layout, file.offset, file.size)) {
      if (seen.has(chunk.index)) continue;
      seen.add(chunk.index);
      bytes += chunk.size;
    }
  }
  return bytes;
}

/** The source one lstat of the stored file decides: empty, stored and trusted, or to fetch with nothing in place. */
function quickSourceFor(env: AssembleEnv, file: FileSpan, sha: string | undefined, recorded: InstalledFile | undefined, identities: Record<string, ObjectIdentity>): FileSource | undefined {
  if (file.size === 0) return EMPTY;
  if (!sha) return FETCH;
  const probe = env.store.probeObject(sha, file.size, identities[sha]);
  if (probe === 'ok') return { kind: 'store', sha };
  if (probe === 'absent' && recorded?.sha256 !== sha) return FETCH;
  return undefined;
}

async function sourceFor(env: AssembleEnv, target: ModelTarget, file: FileSpan, sha: string | undefined, recorded: InstalledFile | undefined, identities: Record<string, ObjectIdentity>): Promise<FileSource> {
  if (file.size === 0) return EMPTY;
  const stored = sha ? await env.store.trustObject(sha, file.size, identities[sha]) : 'absent';
  if (sha && stored === 'ok') return { kind: 'store', sha };
  if (stored === 'corrupt') {
    env.onWarning?.(`${target.name}: the cached copy of ${file.path} (${env.store.objectPath(sha as string)}) was changed in place, probably by writing into an installed hardlink; it was removed and is fetched again`);
  }
  // A file already in place (e.g. installed with --no-cache, or the cache was pruned) is reused as is.
  if (sha && recorded && recorded.sha256 === sha) {
    const path = join(target.dest, file.path);
    try {
      const info = await stat(path);
      if (info.isFile() && info.size === file.size) {
        if (env.verifyInPlace ? (await sha256File(path)) === sha : Math.abs(info.mtimeMs - recorded.mtimeMs) < 1) {
          return { kind: 'adopt', sha, path };
        }
      }
    } catch {
      // gone: fetch it
    }
  }
  return FETCH;
}

/** Fetch what the plan needs, verify, store, stage and promote. Returns the installed record. */
export async function executePlan(env: AssembleEnv, initial: ModelPlan): Promise<InstalledModel> {
  let plan = initial;
  for (let attempt = 1; ; attempt++) {
    const { target } = plan;
    if (plan.neededBytes > 0) {
      const release = await acquireLock(join(env.store.lockDir, target.manifest), `the download of ${target.name}`, env.lockTimeoutMs);
      try {
        // Another process may have finished this model while we waited for the lock.
        if (release.waited) await refreshSources(env, plan);
        await fetchMissing(env, plan);
        for (const archive of archivesOf(plan.content)) await extractMissing(env, plan, archive);
      } finally {
        await release();
      }
    }
    try {
      return await stageAndPromote(env, plan);
    } catch (error) {
      // A `models cache prune` in another process may remove a stored file between planning and
      // linking (installs take no cache lock). Plan again: that file is fetched this time.
      const code = isModelsError(error) ? (error.cause as NodeJS.ErrnoException | undefined)?.code : undefined;
      if (attempt > 1 || code !== 'ENOENT') throw error;
      plan = await planModel(env, target, plan.content);
    }
  }
}

/** Files another process stored while we waited for the model's lock need no fetching. */
async function refreshSources(env: AssembleEnv, plan: ModelPlan): Promise<void> {
  await forEachLimited(plan.layout.files, FS_CONCURRENCY, async (file) => {
    const sha = plan.shas[file.index];
    if (plan.sources[file.index]?.kind === 'fetch' && sha && (await env.store.hasObject(sha, file.size))) {
      plan.sources[file.index] = { kind: 'store', sha };
    }
  });
}

/** Refuse to write through a symlink planted between the install root and the destination. */
async function assertNoSymlinks(root: string, dest: string): Promise<void> {
  const rel = relative(root, dest);
  if (!isInside(root, dest)) throw new ModelsError('E_STORAGE', `install path ${dest} is outside the root ${root}`);
  let current = root;
  for (const part of rel.split(sep).slice(0, -1)) {
    current = join(current, part);
    try {
      const info = await lstat(current);
      if (info.isSymbolicLink() || !info.isDirectory()) {
        throw new ModelsError('E_STORAGE', `refusing to install through ${current}: it is ${info.isSymbolicLink() ? 'a symlink' : 'not a folder'}`, {
          hint: 'remove it, or choose another `path:` for this model',
        });
      }
    } catch (error) {
      if (isModelsError(error)) throw error;
      return; // does not exist yet: created below as a real folder
    }
  }
}

async function stageAndPromote(env: AssembleEnv, plan: ModelPlan): Promise<InstalledModel> {
  const { target, layout } = plan;
  await assertNoSymlinks(env.root, target.dest);
  const parent = dirname(target.dest);
  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const staging = `${target.dest}.xprim-staging-${suffix}`;
  try {
    await mkdir(parent, { recursive: true });
    await mkdir(staging);
    const hardlinked = await linkStaged(env, plan, staging);
    const { files, identities } = await checkStaged(plan, staging, hardlinked);
    // Checked again at the last moment: the folder may have changed since planning.
    const record = env.previous?.path === target.path ? env.previous : undefined;
    const owner = await ownershipOf(target.dest, record);
    let aside: string | undefined;
    if (owner.state === 'foreign') {
      if (!env.force) throw foreignError(target.name, target.dest, owner.reason);
      aside = replacedPath(target.dest);
    }
    await promote(staging, target.dest, suffix, aside);
    if (aside) env.onMovedAside?.(target.dest, aside);
    await recordIdentities(env, plan, identities);
    return {
      model: target.model,
      version: target.version,
      resolved: target.resolved,
      manifest: target.manifest,
      registry: target.registry,
      path: target.path,
      tags: target.tags,
      size: layout.totalSize,
      files,
    };
  } catch (error) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw storageError(error, 'install into', target.dest);
  }
}

/**
 * Folders first (in order, parents before children), then every file: hardlinks synchronously in
 * batches (no new inode, a few microseconds each), then copies and empty files on the thread pool,
 * a few dozen at a time (creating an inode can take a millisecond). By relative name: an absolute
 * path per file held some 20 MB for 100,000 files.
 */
async function linkStaged(env: AssembleEnv, plan: ModelPlan, staging: string): Promise<Set<number>> {
  const hardlinked = new Set<number>();
  const { target, layout } = plan;
  const folders = new Set<string>();
  for (const file of layout.files) {
    const slash = file.path.lastIndexOf('/');
    if (slash > 0) folders.add(file.path.slice(0, slash));
  }
  for (const folder of [...folders].sort()) await mkdir(join(staging, folder), { recursive: true });
  const written: FileSpan[] = [];
  await forEachInBatches(layout.files, (file) => {
    const source = plan.sources[file.index] as FileSource;
    const path = join(staging, file.path);
    if (source.kind === 'fetch' || source.kind === 'extract') throw new ModelsError('E_INTERNAL', `${target.name}: ${file.path} was not fetched`);
    if (source.kind === 'store' && hardlinkIfAllowed(env.store.objectPath(source.sha), path, env.linkMode, join(target.dest, file.path))) hardlinked.add(file.index);
    else if (source.kind !== 'adopt' || !hardlinkOrFalse(source.path, path)) written.push(file);
  });
  await forEachLimited(written, FS_CONCURRENCY, async (file) => {
    const path = join(staging, file.path);
    const source = plan.sources[file.index] as FileSource;
    if (source.kind === 'store') await cloneOrCopy(env.store.objectPath(source.sha), path, env.linkMode);
    else if (source.kind === 'adopt') await cloneOrCopy(source.path, path, 'copy');
    else await writeFile(path, '');
  });
  return hardlinked;
}

/** A file adopted in place is linked into the staging folder when it can be, else copied. */
function hardlinkOrFalse(source: string, dest: string): boolean {
  try {
    linkSync(source, dest);
    return true;
  } catch {
    return false;
  }
}

/**
 * Every staged file has its size; the install record of each (its mtime is what later runs stat
 * against), and the identity of each stored file a hardlink shares (the same inode: no second stat).
 */
async function checkStaged(plan: ModelPlan, staging: string, hardlinked: Set<number>): Promise<{ files: InstalledFile[]; identities: Map<string, ObjectIdentity> }> {
  const { target, layout } = plan;
  const files = new Array<InstalledFile>(layout.files.length);
  const identities = new Map<string, ObjectIdentity>();
  await forEachInBatches(layout.files, (file) => {
    const info = statSync(join(staging, file.path));
    if (info.size !== file.size) {
      throw new ModelsError('E_INTEGRITY', `${target.name}: ${file.path} is ${info.size} bytes, expected ${file.size}`, { hint: 'run `models cache verify`, then install again' });
    }
    files[file.index] = { path: file.path, size: file.size, sha256: file.size === 0 ? EMPTY_SHA256 : (plan.shas[file.index] as string), mtimeMs: info.mtimeMs };
    if (hardlinked.has(file.index)) identities.set(plan.shas[file.index] as string, objectIdentityOf(info));
  });
  return { files, identities };
}

/** Remember what each stored file looked like once verified and linked: the next install trusts it by a stat. */
async function recordIdentities(env: AssembleEnv, plan: ModelPlan, known: Map<string, ObjectIdentity>): Promise<void> {
  const objects: Record<string, ObjectIdentity> = {};
  await forEachInBatches(plan.sources, (source) => {
    if (source.kind !== 'store' || objects[source.sha]) return;
    const id = known.get(source.sha) ?? env.store.identity(source.sha);
    if (id) objects[source.sha] = id;
  });
  await env.store.writeIdentities(plan.target.manifest, objects);
}

/**
 * Swap the staged folder into place: rename the old one aside, rename the new one in, delete the
 * old one, unless `keep` names where a folder the tool did not write is moved (and kept) instead.
 */
async function promote(staging: string, dest: string, suffix: string, keep?: string): Promise<void> {
  const old = keep ?? `${dest}.xprim-old-${suffix}`;
  let hadOld = false;
  try {
    await rename(dest, old);
    hadOld = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  try {
    await rename(staging, dest);
  } catch (error) {
    if (hadOld) await rename(old, dest).catch(() => undefined);
    throw error;
  }
  await fsyncDir(dirname(dest));
  if (hadOld && !keep) await rm(old, { recursive: true, force: true });
}
