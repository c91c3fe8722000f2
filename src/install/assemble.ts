/**
 * Installing one model: plan where every file's bytes will come from (the store, the files already
 * in place, or the network), fetch the missing chunks straight into partial files, verify each file,
 * move it into the store, link the complete model into a staging folder beside the destination, and
 * promote it with renames, so the destination is always the complete old model or the complete new one.
 */
import { isInside } from '../util/paths.js';
import { link, lstat, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { dirname, join, relative, sep } from 'node:path';
import type { LimitFunction } from 'p-limit';
import { ModelsError, abortError, isModelsError, storageError } from '../util/errors.js';
import { fsyncDir } from '../util/fsutil.js';
import { debugLog } from '../util/log.js';
import { type ByteSource, type ChunkJob, type FetchEnv, Journal, PartialFile, RateLimiter, fetchChunk, verifyWrittenChunk } from '../fetch/fetch.js';
import { type FileHasher, PrefixFeeder } from '../store/file-hasher.js';
import { EMPTY_SHA256, sha256File } from '../util/hash.js';
import { acquireLock } from '../store/locks.js';
import type { RegistryClient } from '../registry/client.js';
import { getManifest } from '../store/manifests.js';
import { foreignError, ownershipOf, replacedPath } from './ownership.js';
import { type FileSpan, type ManifestLayout, chunksOverlapping, filesOverlapping } from '../registry/manifest.js';
import type { InstalledFile, InstalledModel } from './state.js';
import { type LinkMode, type ObjectIdentity, type Segment, type Store, type StoredSegment, linkFile } from '../store/store.js';

export interface ModelTarget {
  name: string;
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

type FileSource = { kind: 'empty' } | { kind: 'store'; sha: string } | { kind: 'adopt'; sha: string; path: string } | { kind: 'fetch' };

export interface ModelPlan {
  target: ModelTarget;
  layout: ManifestLayout;
  /** sha256 per file index, where known before fetching. */
  shas: (string | undefined)[];
  sources: FileSource[];
  /** Bytes of files that must be fetched (network or chunk pointers). */
  neededBytes: number;
  /** Bytes of the chunks that hold them: what the fetch really brings in (whole chunks, each once). */
  fetchBytes: number;
}

export async function loadManifest(env: Pick<AssembleEnv, 'store' | 'client' | 'signal'>, target: ModelTarget): Promise<ManifestLayout> {
  return (await getManifest(env.store, env.client, target.manifest, `${target.name} (${target.model}@${target.resolved})`, env.signal)).layout;
}

/** Decide, per file, where its bytes come from. Reads only metadata (stat), never file contents, unless verifying. */
export async function planModel(env: AssembleEnv, target: ModelTarget): Promise<ModelPlan> {
  const layout = await loadManifest(env, target);
  const known = await env.store.readKnownShas(target.manifest);
  const identities = await env.store.readIdentities(target.manifest);
  const previous = env.previous?.manifest === target.manifest && env.previous.path === target.path ? env.previous : undefined;
  const previousFiles = new Map((previous?.files ?? []).map((f) => [f.path, f]));
  const shas = layout.files.map((f) => f.sha256 ?? known[f.path] ?? previousFiles.get(f.path)?.sha256);
  // One stat per file, a few dozen at a time: models of thousands of files are common.
  const { default: pLimit } = await import('p-limit');
  const limit = pLimit(32);
  const sources: FileSource[] = await Promise.all(layout.files.map((file) => limit(() => sourceFor(env, target, file, shas[file.index], previousFiles.get(file.path), identities))));
  const neededBytes = layout.files.reduce((sum, file) => sum + (sources[file.index]?.kind === 'fetch' ? file.size : 0), 0);
  for (const file of layout.files) {
    const kind = sources[file.index]?.kind;
    if (kind === 'store') debugLog(`cache hit: ${target.name}: ${file.path} (${file.size} bytes) is in the store`);
    else if (kind === 'adopt') debugLog(`in place: ${target.name}: ${file.path} is reused as installed`);
  }
  return { target, layout, shas, sources, neededBytes, fetchBytes: chunkBytesFor(layout, sources) };
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

async function sourceFor(env: AssembleEnv, target: ModelTarget, file: FileSpan, sha: string | undefined, recorded: InstalledFile | undefined, identities: Record<string, ObjectIdentity>): Promise<FileSource> {
  if (file.size === 0) return { kind: 'empty' };
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
  return { kind: 'fetch' };
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
      plan = await planModel(env, target);
    }
  }
}

/** Files another process stored while we waited for the model's lock need no fetching. */
async function refreshSources(env: AssembleEnv, plan: ModelPlan): Promise<void> {
  const { default: pLimit } = await import('p-limit');
  const limit = pLimit(32);
  await Promise.all(
    plan.layout.files.map((file) =>
      limit(async () => {
        const sha = plan.shas[file.index];
        if (plan.sources[file.index]?.kind === 'fetch' && sha && (await env.store.hasObject(sha, file.size))) {
          plan.sources[file.index] = { kind: 'store', sha };
        }
      }),
    ),
  );
}

async function fetchMissing(env: AssembleEnv, plan: ModelPlan): Promise<void> {
  const { layout, target } = plan;
  const wanted = layout.files.filter((f) => plan.sources[f.index]?.kind === 'fetch');
  if (wanted.length === 0) return;
  const dir = await env.store.preparePartialDir(target.manifest);
  const journal = await Journal.open(dir);
  const partials = new Map<number, PartialFile>();
  const feeders = new Map<number, PrefixFeeder>();
  const controller = new AbortController();
  // Every in-flight request and backoff listens on it: many more than the default warning threshold.
  setMaxListeners(0, controller.signal);
  const onAbort = () => controller.abort();
  env.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (const file of wanted) {
      const path = join(dir, `f${file.index}`);
      partials.set(file.index, new PartialFile(file, path, !journal.resumed));
      feeders.set(file.index, new PrefixFeeder(env.hasher, path, file.size));
    }
    // A verified chunk completes a byte range of each file it writes into; complete prefixes get hashed.
    const chunkLanded = (job: ChunkJob) => {
      for (const t of job.targets) {
        const from = Math.max(job.chunk.offset, t.span.offset) - t.span.offset;
        const to = Math.min(job.chunk.offset + job.chunk.size, t.span.offset + t.span.size) - t.span.offset;
        feeders.get(t.span.index)?.complete(from, to);
      }
    };
    const segmentOf = (file: FileSpan): string | undefined => {
      const partial = partials.get(file.index);
      if (partial) return partial.path;
      const source = plan.sources[file.index];
      if (source?.kind === 'store') return env.store.objectPath(source.sha);
      if (source?.kind === 'adopt') return source.path;
      return undefined;
    };
    // Every chunk that holds a byte of a wanted file, with the partials it writes and where to read it back.
    const jobs = new Map<number, ChunkJob>();
    for (const file of wanted) {
      for (const chunk of chunksOverlapping(layout, file.offset, file.size)) {
        if (jobs.has(chunk.index)) continue;
        const overlapping = filesOverlapping(layout, chunk);
        const targets = overlapping.map((f) => partials.get(f.index)).filter((p): p is PartialFile => p !== undefined);
        const segments: Segment[] = [];
        let readable = true;
        for (const f of overlapping) {
          const path = segmentOf(f);
          if (!path) readable = false;
          const from = Math.max(chunk.offset, f.offset);
          const to = Math.min(chunk.offset + chunk.size, f.offset + f.size);
          if (path) segments.push({ path, offset: from - f.offset, length: to - from });
        }
        jobs.set(chunk.index, { chunk, targets, segments: readable ? segments : undefined });
      }
    }
    // After a crash the journal may claim bytes the disk never got: check them before trusting them.
    if (journal.resumed) {
      for (const job of jobs.values()) {
        if (journal.done.has(job.chunk.index) && !(await verifyWrittenChunk(job))) await journal.forget(job.chunk.index);
      }
    }
    const fetchEnv: FetchEnv = { client: env.client, store: env.store, rate: env.rate, signal: controller.signal, onBytes: env.onBytes, label: target.name };
    // Count done journal entries as progress an earlier run already made.
    for (const job of jobs.values()) {
      if (!journal.done.has(job.chunk.index)) continue;
      env.onBytes(job.chunk.size, 'resumed');
      chunkLanded(job);
    }

    // A file is finished (hashed, moved into the store) as soon as its last chunk lands.
    const remaining = new Map<number, number>();
    for (const job of jobs.values()) {
      for (const t of job.targets) remaining.set(t.span.index, (remaining.get(t.span.index) ?? 0) + (journal.done.has(job.chunk.index) ? 0 : 1));
    }
    const failures: unknown[] = [];
    const fail = (error: unknown) => {
      failures.push(error);
      controller.abort();
    };
    // Handled at once: a file failing its hash while chunks are in flight stops the rest (exit 6),
    // rather than waiting unobserved (an unhandled rejection) until every chunk is in.
    const finishing: Promise<void>[] = [];
    const finish = (index: number) => finishing.push(finishFile(env, plan, partials.get(index) as PartialFile, feeders.get(index) as PrefixFeeder).catch(fail));
    for (const [index, count] of remaining) if (count === 0) finish(index);

    await Promise.all(
      [...jobs.values()]
        .filter((job) => !journal.done.has(job.chunk.index))
        .map((job) =>
          env.limit(async () => {
            if (controller.signal.aborted) return;
            try {
              await fetchChunk(fetchEnv, job, journal);
              chunkLanded(job);
              for (const t of job.targets) {
                const left = (remaining.get(t.span.index) ?? 1) - 1;
                remaining.set(t.span.index, left);
                if (left === 0) finish(t.span.index);
              }
            } catch (error) {
              fail(error);
            }
          }),
        ),
    );
    await Promise.all(finishing);
    if (env.signal?.aborted) throw abortError();
    const first = failures.find((e) => !(isModelsError(e) && e.code === 'E_ABORTED')) ?? failures[0];
    if (first) throw first;
    await writePointers(env, plan, [...jobs.values()]);
  } finally {
    env.signal?.removeEventListener('abort', onAbort);
    await Promise.all([...partials.values()].map((p) => p.close()));
    await journal.close();
  }
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
}

/** Verify a completed partial file against its sha256 (or learn it) and move it into the store. */
async function finishFile(env: AssembleEnv, plan: ModelPlan, partial: PartialFile, feeder: PrefixFeeder): Promise<void> {
  const { span } = partial;
  // No fsync per file (an fsync storm would dominate on a slow disk): after a crash the journal is
  // re-checked against the bytes on disk, and `models verify` re-hashes what was installed.
  let actual: string;
  try {
    await partial.close();
    actual = await feeder.digest();
  } catch (error) {
    throw storageError(error, 'hash', partial.path);
  }
  const expected = plan.shas[span.index];
  if (expected && actual !== expected) {
    await rm(partial.path, { force: true });
    throw new ModelsError('E_INTEGRITY', `${plan.target.name}: file ${span.path} has sha256 ${actual}, the manifest says ${expected}`, {
      hint: 'run the install again; if it repeats, the registry publishes inconsistent data',
    });
  }
  plan.shas[span.index] = actual;
  await env.store.putObject(partial.path, actual);
  plan.sources[span.index] = { kind: 'store', sha: actual };
}

/** Record, for every fetched chunk, where its bytes now live in the store: it will never be fetched again. */
async function writePointers(env: AssembleEnv, plan: ModelPlan, jobs: ChunkJob[]): Promise<void> {
  const { layout } = plan;
  await Promise.all(
    jobs.map(async ({ chunk }) => {
      const segments: StoredSegment[] = [];
      for (const f of filesOverlapping(layout, chunk)) {
        const sha = plan.shas[f.index];
        if (!sha || plan.sources[f.index]?.kind !== 'store') return;
        const from = Math.max(chunk.offset, f.offset);
        const to = Math.min(chunk.offset + chunk.size, f.offset + f.size);
        segments.push({ file: sha, offset: from - f.offset, length: to - from });
      }
      await env.store.writePointer(chunk.hash, segments).catch(() => undefined);
    }),
  );
  const learned: Record<string, string> = {};
  for (const f of layout.files) if (!f.sha256 && plan.shas[f.index]) learned[f.path] = plan.shas[f.index] as string;
  if (Object.keys(learned).length > 0) await env.store.writeKnownShas(plan.target.manifest, learned);
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
    // Folders first (in order, parents before children), then every file linked a few dozen at a time.
    const folders = [...new Set(layout.files.map((file) => dirname(join(staging, file.path))))].filter((f) => f !== staging).sort();
    for (const folder of folders) await mkdir(folder, { recursive: true });
    const { default: pLimit } = await import('p-limit');
    const limit = pLimit(32);
    await Promise.all(
      layout.files.map((file) =>
        limit(async () => {
          const path = join(staging, file.path);
          const source = plan.sources[file.index] as FileSource;
          if (source.kind === 'empty') await writeFile(path, '');
          else if (source.kind === 'store') await linkFile(env.store.objectPath(source.sha), path, env.linkMode, join(target.dest, file.path));
          else if (source.kind === 'adopt') await link(source.path, path).catch(() => linkFile(source.path, path, 'copy'));
          else throw new ModelsError('E_INTERNAL', `${target.name}: ${file.path} was not fetched`);
        }),
      ),
    );
    // Bounded like the links above: 100,000 stats at once held ~800 MB of pending requests.
    const files: InstalledFile[] = await Promise.all(
      layout.files.map((file) => limit(async () => {
        const info = await stat(join(staging, file.path));
        if (info.size !== file.size) {
          throw new ModelsError('E_INTEGRITY', `${target.name}: ${file.path} is ${info.size} bytes, expected ${file.size}`, { hint: 'run `models cache verify`, then install again' });
        }
        return { path: file.path, size: file.size, sha256: file.size === 0 ? EMPTY_SHA256 : (plan.shas[file.index] as string), mtimeMs: info.mtimeMs };
      })),
    );
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
    await recordIdentities(env, plan);
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

/** Remember what each stored file looked like once verified and linked: the next install trusts it by a stat. */
async function recordIdentities(env: AssembleEnv, plan: ModelPlan): Promise<void> {
  const objects: Record<string, ObjectIdentity> = {};
  for (const source of plan.sources) {
    if (source.kind !== 'store' || objects[source.sha]) continue;
    const id = await env.store.identity(source.sha);
    if (id) objects[source.sha] = id;
  }
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
