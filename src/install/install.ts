/**
 * `install`: from a lock (written first unless --frozen) to verified files in place. The fast path
 * (everything recorded and unchanged) stats files and returns: no network, no hashing, no store.
 */
import { rm, stat, statfs } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { type AssembleEnv, type ModelPlan, type ModelTarget, executePlan, planModel } from './assemble.js';
import { type ModelEntry, matchesPlatform, parsePlatform } from '../project/config.js';
import { ModelsError, abortError } from '../util/errors.js';
import { RateLimiter } from '../fetch/fetch.js';
import { type FileHasher, createFileHasher } from '../store/file-hasher.js';
import { sha256File } from '../util/hash.js';
import { acquireLock } from '../store/locks.js';
import { longestPathProblem } from '../util/paths.js';
import { assertLockMatchesManifest, lockMatchesRecord, shareLockedStrings } from './lock-contract.js';
import { type LockedModel, lockStatus } from '../project/lockfile.js';
import type { Project } from '../project/project.js';
import { TEMP_STORE, checkForeignRoot, cleanLeftovers, findLeftovers, foreignError, ownershipOf, recordByHashing, removeRecorded } from './ownership.js';
import { lockProject } from '../sources/lock-project.js';
import { type ContentContext, adapterFor } from '../sources/index.js';
import { Session, type SessionOptions, checkEnvironment, concurrencyFrom, lockTimeoutFrom, rangeSizeFrom } from '../project/session.js';
import { type InstallState, type InstalledModel, changedFiles, readState, writeState } from './state.js';
import { type LinkMode, Store } from '../store/store.js';
import { GENERATOR } from '../util/version.js';
import { formatBytes } from '../util/units.js';
import { forEachLimited } from '../util/pool.js';

export interface InstallOptions extends SessionOptions {
  frozen?: boolean;
  /** Names or tags. */
  only?: string[];
  /** "os-arch", for `when:`. */
  platform?: string;
  /** Install here instead of the configured root (installer staging). */
  root?: string;
  noCache?: boolean;
  /** Re-hash installed files instead of trusting the recorded size + mtime. */
  verify?: boolean;
  limitRate?: number;
  linkMode?: LinkMode;
  lockTimeoutMs?: number;
  /** Move a destination the tool did not write aside (`<dest>.xprim-replaced-<time>`) instead of refusing. */
  force?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: InstallEvent) => void;
}

export type ModelSource = 'network' | 'cache' | 'mixed' | 'up-to-date';

export interface ModelResult {
  name: string;
  model: string;
  version: string;
  resolved: string;
  manifest: string;
  path: string;
  size: number;
  source: ModelSource;
  bytesDownloaded: number;
  bytesFromCache: number;
  durationMs: number;
  /** Files that were missing or modified and have been put back. */
  repaired: string[];
}

export type InstallEvent =
  | { type: 'locked'; changes: number; removed: number; written: boolean }
  | { type: 'removed'; name: string; path: string }
  | { type: 'start'; name: string; model: string; resolved: string; totalBytes: number; neededBytes: number }
  | { type: 'progress'; name: string; doneBytes: number; totalBytes: number; networkBytes: number; resumedBytes: number }
  | { type: 'done'; result: ModelResult }
  | { type: 'moved-aside'; name: string; from: string; to: string }
  | { type: 'warning'; name: string; message: string }
  | { type: 'skipped'; result: ModelResult };

export interface InstallResult {
  installed: ModelResult[];
  skipped: ModelResult[];
  removed: string[];
  /** --force: folders the tool did not write, moved aside rather than deleted. */
  movedAside: { name: string; from: string; to: string }[];
  /** Files of removed models left in place: not provably written by the tool (changed, or never recorded). */
  leftInPlace: string[];
  bytesDownloaded: number;
  bytesFromCache: number;
  durationMs: number;
  root: string;
  lockWritten: boolean;
}

const DEFAULT_LOCK_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * The quickest answer to "is everything in place?": when models.yaml and models.lock are byte for
 * byte the ones this root was installed from, the install records stand in for the lock (it is not
 * even parsed), and each file is one stat. Anything else falls through to the full install.
 */
async function tryUpToDate(
  project: Project,
  root: string,
  state: InstallState,
  options: InstallOptions,
  emit: (event: InstallEvent) => void,
): Promise<Omit<InstallResult, 'durationMs'> | undefined> {
  const inputs = state.inputs;
  if (options.verify || !inputs || inputs.config !== project.digests.config || inputs.lock !== project.digests.lock) return undefined;
  const entries = selectEntries(project.config.models, options.only, options.platform);
  const wanted = new Set(project.config.models.map((m) => m.name));
  if (!options.only?.length && Object.keys(state.models).some((name) => !wanted.has(name))) return undefined;
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

/** Pick the entries this run installs: --only (names or tags) and `when:` for the target platform. */
export function selectEntries(entries: ModelEntry[], only: string[] | undefined, platform: string | undefined, flag = '--only '): ModelEntry[] {
  const target = platform ? parsePlatform(platform) : { os: process.platform, arch: process.arch };
  if (only && only.length > 0) {
    const known = new Set(entries.flatMap((e) => [e.name, ...e.tags]));
    const unknown = only.filter((o) => !known.has(o));
    if (unknown.length > 0) {
      throw new ModelsError('E_USAGE', `${flag}${unknown.join(', ')}: no model or tag of that name`, { hint: `models: ${entries.map((e) => e.name).join(', ')}` });
    }
  }
  return entries.filter((e) => matchesPlatform(e, target) && (!only || only.length === 0 || only.includes(e.name) || e.tags.some((t) => only.includes(t))));
}

export function frozenCheck(project: Project): void {
  const status = lockStatus(project.config, project.lock);
  if (!project.lock) {
    throw new ModelsError('E_FROZEN', `--frozen: ${project.lockPath} is missing`, { hint: 'run `models lock` and commit models.lock' });
  }
  if (!status.inSync) {
    const parts = [
      status.missing.length ? `not locked: ${status.missing.join(', ')}` : '',
      status.stale.length ? `changed since locked: ${status.stale.join(', ')}` : '',
      status.extra.length ? `locked but no longer in models.yaml: ${status.extra.join(', ')}` : '',
    ].filter(Boolean);
    // Point at the first drifted entry (editors, Action annotations); removed entries have no line.
    const first = project.config.models.find((m) => status.missing.includes(m.name) || status.stale.includes(m.name));
    throw new ModelsError('E_FROZEN', `--frozen: ${project.lockPath} is out of sync with ${project.config.file} (${parts.join('; ')})`, {
      hint: 'run `models lock` and commit models.lock',
      file: project.config.file,
      ...(first ? { line: first.line } : {}),
    });
  }
}

function targetFor(project: Project, root: string, entry: ModelEntry, locked: LockedModel): ModelTarget {
  const dest = resolve(root, entry.path);
  const rel = relative(root, dest);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..') {
    throw new ModelsError('E_CONFIG', `${entry.name}: path "${entry.path}" leaves the install root ${root}`, { file: project.config.file, line: entry.line });
  }
  return { name: entry.name, kind: entry.kind, model: locked.model, version: locked.version, resolved: locked.resolved, registry: locked.registry, manifest: locked.manifest, path: entry.path, tags: entry.tags, dest };
}

/** A file changed in place through a hardlink changes the stored copy too: check it before reuse. */
async function dropSuspectObjects(store: Store, dest: string, installed: InstalledModel, paths: string[]): Promise<void> {
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

async function checkFreeSpace(store: Store, root: string, neededBytes: number): Promise<void> {
  if (neededBytes === 0) return;
  for (const [what, dir] of [
    ['cache', store.dir],
    ['install root', root],
  ] as const) {
    const info = await statfs(dir).catch(() => undefined);
    if (!info) continue;
    const free = info.bavail * info.bsize;
    // Small margin for metadata; hardlinks mean the root needs no second copy on the same disk.
    if (free < neededBytes + 16 * 1024 * 1024) {
      throw new ModelsError('E_NO_SPACE', `not enough free space in the ${what} ${dir}: ${formatBytes(free)} free, ${formatBytes(neededBytes)} needed`, {
        hint: 'free some space (`models cache prune`), or use --cache-dir / --root on a bigger disk',
      });
    }
  }
}

export async function install(project: Project, options: InstallOptions = {}): Promise<InstallResult> {
  const started = performance.now();
  const emit = options.onEvent ?? (() => undefined);
  const env = options.env ?? process.env;
  let session: Session | undefined;
  let lockWritten = false;
  // Settings are checked up front, whether or not there is work to do.
  checkEnvironment(env);
  concurrencyFrom(options.concurrency, env);
  const lockTimeoutMs = options.lockTimeoutMs ?? lockTimeoutFrom(env, DEFAULT_LOCK_TIMEOUT_MS);
  const root = resolve(options.root ?? project.config.root);
  const outside = checkRootPlacement(project, root);
  let state = await readState(root, GENERATOR);
  const dests = (): string[] => [...project.config.models.map((m) => resolve(root, m.path)), ...Object.values(state.models).map((m) => resolve(root, m.path))];
  // Leftovers of a killed run send even an up-to-date install down the slow path, which cleans them.
  const dirty = (await findLeftovers(root, dests(), Boolean(options.noCache))).length > 0;
  const quick = dirty ? undefined : await tryUpToDate(project, root, state, options, emit);
  if (quick) return { ...quick, durationMs: Math.round(performance.now() - started) };
  if (options.frozen) {
    frozenCheck(project);
  } else if (!lockStatus(project.config, project.lock).inSync) {
    session = new Session(project.config, options);
    const locked = await lockProject(session, project, options.signal ? { signal: options.signal } : {});
    lockWritten = locked.written;
    emit({ type: 'locked', changes: locked.changes.length, removed: locked.removed.length, written: locked.written });
    for (const change of locked.changes) if (change.note) emit({ type: 'warning', name: change.name, message: `${change.name}: ${change.note}` });
  }
  const lock = project.lock as NonNullable<Project['lock']>;
  const entries = selectEntries(project.config.models, options.only, options.platform);
  const targets = entries.map((entry) => targetFor(project, root, entry, lock.models[entry.name] as LockedModel));

  // Fast path: recorded, same manifest and path, every file's size and mtime unchanged.
  const skipped: ModelResult[] = [];
  const pending: { target: ModelTarget; changed: string[] }[] = [];
  for (const target of targets) {
    const installed = state.models[target.name];
    // A record that contradicts the lock is not "in place": the plan below checks the lock against its manifest.
    if (installed && installed.manifest === target.manifest && installed.path === target.path && lockMatchesRecord(lock.models[target.name] as LockedModel, installed)) {
      let changed = await changedFiles(target.dest, installed);
      if (changed.length === 0 && options.verify) changed = await rehashChanged(target.dest, installed);
      if (changed.length === 0) {
        const result = resultFor(target, installed.size, 'up-to-date', 0, 0, 0, []);
        skipped.push(result);
        emit({ type: 'skipped', result });
        continue;
      }
      pending.push({ target, changed });
    } else {
      pending.push({ target, changed: [] });
    }
  }
  const wanted = new Set(project.config.models.map((m) => m.name));
  const extraneous = options.only?.length ? [] : Object.keys(state.models).filter((name) => !wanted.has(name));
  if (pending.length === 0 && extraneous.length === 0 && !dirty) {
    await session?.close();
    // Everything is in place for these exact inputs: remember them, so the next run takes the quick path.
    const lockDigest = project.digests.lock;
    if (lockDigest && !options.only?.length && (state.inputs?.config !== project.digests.config || state.inputs?.lock !== lockDigest)) {
      state.inputs = { config: project.digests.config, lock: lockDigest };
      await writeState(root, state).catch(() => undefined);
    }
    return { installed: [], skipped, removed: [], movedAside: [], leftInPlace: [], bytesDownloaded: 0, bytesFromCache: 0, durationMs: Math.round(performance.now() - started), root, lockWritten };
  }

  // Slow path: something to fetch, link or repair.
  const noCacheDir = options.noCache ? join(root, TEMP_STORE) : undefined;
  if (outside && !options.force) await checkForeignRoot(root);
  session ??= new Session(project.config, { ...options, ...(noCacheDir ? { cacheDir: noCacheDir } : {}) });
  const store = noCacheDir ? new Store(noCacheDir) : session.store;
  const { default: pLimit } = await import('p-limit');
  const limit = pLimit(session.concurrency);
  const rate = options.limitRate ? new RateLimiter(options.limitRate) : undefined;
  const installed: ModelResult[] = [];
  const movedAside: InstallResult['movedAside'] = [];
  const leftInPlace: string[] = [];
  let release: (() => Promise<void>) | undefined;
  let hasher: FileHasher | undefined;
  try {
    await mkdirRoot(root);
    release = await acquireLock(join(root, '.xprim-install'), `the install root ${root}`, lockTimeoutMs);
    state = await readState(root, GENERATOR); // another process may have installed meanwhile
    await cleanLeftovers(await findLeftovers(root, dests(), Boolean(noCacheDir)));
    await store.init();
    const counters = new Map<string, { done: number; network: number; cache: number; resumed: number }>();
    const envFor = (target: ModelTarget): AssembleEnv => {
      const counter = { done: 0, network: 0, cache: 0, resumed: 0 };
      counters.set(target.name, counter);
      let lastEmit = 0;
      return {
        store,
        client: undefined as unknown as AssembleEnv['client'], // set from the source's content below
        limit,
        rangeSize: rangeSizeFrom(env),
        linkMode: options.linkMode ?? linkModeFrom(env),
        root,
        lockTimeoutMs,
        rate,
        signal: options.signal,
        previous: state.models[target.name],
        verifyInPlace: Boolean(options.verify),
        force: Boolean(options.force),
        onWarning: (message) => emit({ type: 'warning', name: target.name, message }),
        onMovedAside: (from, to) => {
          movedAside.push({ name: target.name, from, to });
          emit({ type: 'moved-aside', name: target.name, from, to });
        },
        hasher: undefined as unknown as FileHasher, // set once the plans say how much there is to hash
        onBytes: (bytes, source) => {
          counter.done += bytes;
          if (source === 'network') counter.network += bytes;
          else if (source === 'resumed') counter.resumed += bytes;
          else counter.cache += bytes;
          const now = Date.now();
          if (now - lastEmit >= 100) {
            lastEmit = now;
            emit({ type: 'progress', name: target.name, doneBytes: counter.done, totalBytes: 0, networkBytes: counter.network, resumedBytes: counter.resumed });
          }
        },
      };
    };
    for (const { target, changed } of pending) {
      const previous = state.models[target.name];
      if (previous && changed.length > 0) await dropSuspectObjects(store, target.dest, previous, changed);
    }
    const contentCtx: ContentContext = { session, store, signal: options.signal };
    const plans: { plan: ModelPlan; env: AssembleEnv; changed: string[] }[] = await Promise.all(
      pending.map(async ({ target, changed }) => {
        const env = envFor(target);
        const entry = project.config.models.find((m) => m.name === target.name) as ModelEntry;
        const content = await adapterFor(entry.kind).content(contentCtx, entry, lock.models[target.name] as LockedModel);
        env.client = content.client;
        return { plan: await planModel(env, target, content), env, changed };
      }),
    );
    for (const { plan } of plans) {
      assertLockMatchesManifest(project.lockPath, plan.target.name, lock.models[plan.target.name] as LockedModel, plan.layout);
      shareLockedStrings(lock.models[plan.target.name] as LockedModel, plan.layout.files);
      const tooLong = longestPathProblem(plan.target.dest, plan.layout.files);
      if (tooLong) throw new ModelsError('E_STORAGE', `${plan.target.name}: ${tooLong}`, { hint: 'install to a shorter --root or `path:` (nothing was downloaded)' });
    }
    await claimDestinations(plans, state, Boolean(options.force));
    const neededBytes = plans.reduce((sum, p) => sum + p.plan.neededBytes, 0);
    await checkFreeSpace(store, root, neededBytes);
    hasher = createFileHasher(neededBytes);
    for (const p of plans) p.env.hasher = hasher;
    // State writes are serialised: parallel models must not race their renames.
    let stateWrites = Promise.resolve();
    const saveState = () => (stateWrites = stateWrites.then(() => writeState(root, state)));
    const runOne = async ({ plan: initial, env, changed }: (typeof plans)[number], replan: boolean) => {
      const begun = performance.now();
      // A model that waited for another one sharing its chunks plans again: those files are stored now.
      const plan = replan ? await planModel(env, initial.target, initial.content) : initial;
      const { target } = plan;
      emit({ type: 'start', name: target.name, model: target.model, resolved: target.resolved, totalBytes: plan.layout.totalSize, neededBytes: plan.fetchBytes });
      const record = await executePlan(env, plan);
      state.models[target.name] = record;
      await saveState();
      const counter = counters.get(target.name) as { done: number; network: number; cache: number; resumed: number };
      // The last progress event, unthrottled: the view ends on the exact count.
      emit({ type: 'progress', name: target.name, doneBytes: counter.done, totalBytes: 0, networkBytes: counter.network, resumedBytes: counter.resumed });
      const source: ModelSource = counter.network === 0 ? 'cache' : counter.cache === 0 && plan.neededBytes === plan.layout.totalSize ? 'network' : 'mixed';
      const result = resultFor(target, plan.layout.totalSize, source, counter.network, plan.layout.totalSize - counter.network, performance.now() - begun, changed);
      installed.push(result);
      emit({ type: 'done', result });
    };
    const results = await Promise.allSettled(
      groupBySharedChunks(plans.map((p) => p.plan)).map(async (group) => {
        for (const [i, index] of group.entries()) await runOne(plans[index] as (typeof plans)[number], i > 0);
      }),
    );
    if (options.signal?.aborted) throw abortError();
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    for (const name of extraneous) {
      const record = state.models[name] as InstalledModel;
      leftInPlace.push(...(await removeRecorded(root, record)));
      delete state.models[name];
      emit({ type: 'removed', name, path: resolve(root, record.path) });
    }
    if (project.digests.lock) state.inputs = { config: project.digests.config, lock: project.digests.lock };
    await writeState(root, state);
    if (noCacheDir) await rm(noCacheDir, { recursive: true, force: true });
  } finally {
    await hasher?.close();
    await release?.();
    await session.close();
  }
  installed.sort((a, b) => a.name.localeCompare(b.name));
  return {
    installed,
    skipped,
    removed: extraneous,
    movedAside,
    leftInPlace,
    bytesDownloaded: installed.reduce((s, r) => s + r.bytesDownloaded, 0),
    bytesFromCache: installed.reduce((s, r) => s + r.bytesFromCache, 0),
    durationMs: Math.round(performance.now() - started),
    root,
    lockWritten,
  };
}

/**
 * `--root` may not be the project folder or one of its parents. Returns true when the root lies
 * outside the project: then it must be empty or ours (checked before anything is written).
 */
function checkRootPlacement(project: Project, root: string): boolean {
  const fromRoot = relative(root, project.config.dir);
  if (fromRoot === '' || (!fromRoot.startsWith('..') && !isAbsolute(fromRoot))) {
    throw new ModelsError('E_USAGE', `install root ${root} is the project folder or one of its parents: installing there would replace its files`, {
      hint: 'use a folder of its own, e.g. --root models',
    });
  }
  const fromProject = relative(project.config.dir, root);
  return fromProject.startsWith('..') || isAbsolute(fromProject);
}

/**
 * Before anything is fetched: every destination must be absent, empty, or ours. A folder with no
 * valid record that holds exactly the locked files (checked by hashing) is adopted as ours.
 */
async function claimDestinations(plans: { plan: ModelPlan; env: AssembleEnv }[], state: InstallState, force: boolean): Promise<void> {
  for (const entry of plans) {
    const { target } = entry.plan;
    const recorded = state.models[target.name];
    const record = recorded?.path === target.path ? recorded : undefined;
    const owner = await ownershipOf(target.dest, record);
    if (owner.state !== 'foreign') continue;
    if (!record) {
      const base = { model: target.model, version: target.version, resolved: target.resolved, manifest: target.manifest, registry: target.registry, path: target.path, tags: target.tags, size: entry.plan.layout.totalSize };
      const rebuilt = await recordByHashing(target.dest, entry.plan.layout, entry.plan.shas, base);
      if (rebuilt) {
        state.models[target.name] = rebuilt;
        entry.env.previous = rebuilt;
        entry.plan = await planModel(entry.env, target, entry.plan.content);
        continue;
      }
    }
    if (!force) throw foreignError(target.name, target.dest, owner.reason);
  }
}

/**
 * Models that share a chunk (or a manifest) run one after another, so a chunk is fetched once and
 * the later model reuses it from the store; unrelated models run in parallel. Returns plan indexes.
 */
export function groupBySharedChunks(plans: ModelPlan[]): number[][] {
  const parent = plans.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i] as number)));
  const owner = new Map<string, number>();
  plans.forEach((plan, i) => {
    const wanted = plan.layout.chunks.map((c) => c.hash);
    for (const key of [`m:${plan.target.manifest}`, ...wanted]) {
      const j = owner.get(key);
      if (j === undefined) owner.set(key, i);
      else parent[find(i)] = find(j);
    }
  });
  const groups = new Map<number, number[]>();
  plans.forEach((_, i) => groups.set(find(i), [...(groups.get(find(i)) ?? []), i]));
  return [...groups.values()];
}

async function mkdirRoot(root: string): Promise<void> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(root, { recursive: true }).catch((error: unknown) => {
    throw new ModelsError('E_STORAGE', `cannot create the install root ${root}: ${(error as Error).message}`, { hint: 'check permissions, or pass --root' });
  });
}

async function rehashChanged(dest: string, installed: InstalledModel): Promise<string[]> {
  const bad: string[] = [];
  await forEachLimited(installed.files, 4, async (f) => {
    if ((await sha256File(join(dest, f.path)).catch(() => '')) !== f.sha256) bad.push(f.path);
  });
  return bad.sort();
}

function linkModeFrom(env: NodeJS.ProcessEnv): LinkMode {
  const mode = env.MODELS_LINK_MODE ?? 'auto';
  if (mode === 'auto' || mode === 'hardlink' || mode === 'reflink' || mode === 'copy') return mode;
  throw new ModelsError('E_USAGE', `MODELS_LINK_MODE=${mode}: expected auto, hardlink, reflink or copy`);
}

function resultFor(target: ModelTarget, size: number, source: ModelSource, network: number, cache: number, durationMs: number, repaired: string[]): ModelResult {
  return {
    name: target.name,
    model: target.model,
    version: target.version,
    resolved: target.resolved,
    manifest: target.manifest,
    path: target.dest,
    size,
    source,
    bytesDownloaded: network,
    bytesFromCache: Math.max(0, cache),
    durationMs: Math.round(durationMs),
    repaired,
  };
}
