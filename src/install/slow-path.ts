/**
 * The slow path of `install`: something to fetch, link, repair or remove. Under the root's lock:
 * plan every pending model, check the plans against the lock and the disk, then assemble the models
 * (models sharing chunks one after another), and finally drop models no longer configured.
 */
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { LimitFunction } from 'p-limit';
import { type AssembleEnv, type ModelPlan, type ModelTarget, executePlan, planModel } from './assemble.js';
import { destinations } from './entries.js';
import { type PendingModel, dropSuspectObjects } from './in-place.js';
import { assertLockMatchesManifest, shareLockedStrings } from './lock-contract.js';
import { TEMP_STORE, checkForeignRoot, cleanLeftovers, findLeftovers, foreignError, ownershipOf, recordByHashing, removeRecorded } from './ownership.js';
import { checkFreeSpace, linkModeFrom, mkdirRoot } from './preflight.js';
import { type InstallState, type InstalledModel, readState, writeState } from './state.js';
import { type InstallEvent, type InstallOptions, type InstallResult, type ModelResult, type ModelSource, resultFor } from './types.js';
import type { ByteSource } from '../fetch/fetch.js';
import { RateLimiter } from '../fetch/rate-limit.js';
import type { ModelEntry } from '../project/config.js';
import type { Lockfile, LockedModel } from '../project/lockfile.js';
import type { Project } from '../project/project.js';
import { Session } from '../project/session.js';
import { rangeSizeFrom } from '../project/settings.js';
import { type ContentContext, adapterFor } from '../sources/index.js';
import { type FileHasher, createFileHasher } from '../store/file-hasher.js';
import { acquireLock } from '../store/locks.js';
import { Store } from '../store/store.js';
import { ModelsError, abortError } from '../util/errors.js';
import { longestPathProblem } from '../util/paths.js';
import { GENERATOR } from '../util/version.js';

/** One install run: its inputs, its settings and the install records it works on. */
export interface InstallRun {
  project: Project;
  options: InstallOptions;
  emit: (event: InstallEvent) => void;
  env: NodeJS.ProcessEnv;
  root: string;
  lockTimeoutMs: number;
  /** The root lies outside the project folder: it must be empty or ours. */
  outside: boolean;
  state: InstallState;
  /** Leftovers of a killed run were found (the slow path cleans them). */
  dirty: boolean;
}

export interface SlowPathResult {
  installed: ModelResult[];
  movedAside: InstallResult['movedAside'];
  leftInPlace: string[];
}

/** What every model's assembly in this run shares. */
interface Assembly {
  run: InstallRun;
  session: Session;
  store: Store;
  limit: LimitFunction;
  rate: RateLimiter | undefined;
  out: SlowPathResult;
}

interface ByteCounter {
  counts: { done: number; network: number; cache: number; resumed: number };
  onBytes: (bytes: number, source: ByteSource) => void;
  /** Emit the current counts now (the last event is unthrottled: the view ends on the exact count). */
  report: () => void;
}

interface PlannedModel {
  plan: ModelPlan;
  env: AssembleEnv;
  changed: string[];
  counter: ByteCounter;
}

/** `session` is the one the lock step opened, if any; a new one is opened otherwise. Closed here either way. */
export async function installPending(run: InstallRun, lockSession: Session | undefined, lock: Lockfile, pending: PendingModel[], extraneous: string[]): Promise<SlowPathResult> {
  const { project, options, root } = run;
  const noCacheDir = options.noCache ? join(root, TEMP_STORE) : undefined;
  if (run.outside && !options.force) await checkForeignRoot(root);
  const session = lockSession ?? new Session(project.config, { ...options, ...(noCacheDir ? { cacheDir: noCacheDir } : {}) });
  const store = noCacheDir ? new Store(noCacheDir) : session.store;
  const { default: pLimit } = await import('p-limit');
  const out: SlowPathResult = { installed: [], movedAside: [], leftInPlace: [] };
  const assembly: Assembly = { run, session, store, limit: pLimit(session.concurrency), rate: options.limitRate ? new RateLimiter(options.limitRate) : undefined, out };
  let release: (() => Promise<void>) | undefined;
  let hasher: FileHasher | undefined;
  try {
    release = await lockRoot(root, run.lockTimeoutMs);
    await refreshUnderLock(run, store, Boolean(noCacheDir));
    const plans = await planPending(assembly, lock, pending);
    await claimDestinations(plans, run.state, Boolean(options.force));
    hasher = await startHasher(plans, store, root);
    await assembleAll(assembly, plans);
    await removeExtraneous(run, extraneous, out);
    if (project.digests.lock) run.state.inputs = { config: project.digests.config, lock: project.digests.lock };
    await writeState(root, run.state);
    if (noCacheDir) await rm(noCacheDir, { recursive: true, force: true });
  } finally {
    await hasher?.close();
    await release?.();
    await session.close();
  }
  return out;
}

async function lockRoot(root: string, lockTimeoutMs: number): Promise<() => Promise<void>> {
  await mkdirRoot(root);
  return acquireLock(join(root, '.xprim-install'), `the install root ${root}`, lockTimeoutMs);
}

/** Under the lock, start from what is on disk now: another process may have installed meanwhile. */
async function refreshUnderLock(run: InstallRun, store: Store, noCache: boolean): Promise<void> {
  run.state = await readState(run.root, GENERATOR);
  await cleanLeftovers(await findLeftovers(run.root, destinations(run.project, run.root, Object.values(run.state.models)), noCache));
  await store.init();
}

/** Plan every pending model from its source's content, then check each plan before anything is fetched. */
async function planPending(assembly: Assembly, lock: Lockfile, pending: PendingModel[]): Promise<PlannedModel[]> {
  const { run, session, store } = assembly;
  for (const { target, changed } of pending) {
    const previous = run.state.models[target.name];
    if (previous && changed.length > 0) await dropSuspectObjects(store, target.dest, previous, changed);
  }
  const contentCtx: ContentContext = { session, store, signal: run.options.signal };
  const plans = await Promise.all(
    pending.map(async ({ target, changed }) => {
      const counter = byteCounter(target.name, run.emit);
      const env = assembleEnvFor(assembly, target, counter);
      const entry = run.project.config.models.find((m) => m.name === target.name) as ModelEntry;
      const content = await adapterFor(entry.kind).content(contentCtx, entry, lock.models[target.name] as LockedModel);
      env.client = content.client;
      return { plan: await planModel(env, target, content), env, changed, counter };
    }),
  );
  for (const { plan } of plans) checkPlan(run.project.lockPath, lock.models[plan.target.name] as LockedModel, plan);
  return plans;
}

/** The lock must say what the manifest says, and every path must fit the file system (nothing downloaded yet). */
function checkPlan(lockPath: string, locked: LockedModel, plan: ModelPlan): void {
  assertLockMatchesManifest(lockPath, plan.target.name, locked, plan.layout);
  shareLockedStrings(locked, plan.layout.files);
  const tooLong = longestPathProblem(plan.target.dest, plan.layout.files);
  if (tooLong) throw new ModelsError('E_STORAGE', `${plan.target.name}: ${tooLong}`, { hint: 'install to a shorter --root or `path:` (nothing was downloaded)' });
}

function assembleEnvFor(assembly: Assembly, target: ModelTarget, counter: ByteCounter): AssembleEnv {
  const { run, store, limit, rate, out } = assembly;
  return {
    store,
    client: undefined as unknown as AssembleEnv['client'], // set from the source's content
    limit,
    rangeSize: rangeSizeFrom(run.env),
    linkMode: run.options.linkMode ?? linkModeFrom(run.env),
    root: run.root,
    lockTimeoutMs: run.lockTimeoutMs,
    rate,
    signal: run.options.signal,
    previous: run.state.models[target.name],
    verifyInPlace: Boolean(run.options.verify),
    force: Boolean(run.options.force),
    onWarning: (message) => run.emit({ type: 'warning', name: target.name, message }),
    onMovedAside: (from, to) => {
      out.movedAside.push({ name: target.name, from, to });
      run.emit({ type: 'moved-aside', name: target.name, from, to });
    },
    hasher: undefined as unknown as FileHasher, // set once the plans say how much there is to hash
    onBytes: counter.onBytes,
  };
}

/** One model's byte counts by source, with progress events at most every 100 ms. */
function byteCounter(name: string, emit: (event: InstallEvent) => void): ByteCounter {
  const counts = { done: 0, network: 0, cache: 0, resumed: 0 };
  let lastEmit = 0;
  const report = () => emit({ type: 'progress', name, doneBytes: counts.done, totalBytes: 0, networkBytes: counts.network, resumedBytes: counts.resumed });
  const onBytes = (bytes: number, source: ByteSource) => {
    counts.done += bytes;
    if (source === 'network') counts.network += bytes;
    else if (source === 'resumed') counts.resumed += bytes;
    else counts.cache += bytes;
    const now = Date.now();
    if (now - lastEmit >= 100) {
      lastEmit = now;
      report();
    }
  };
  return { counts, onBytes, report };
}

/** Free space is checked for the whole run; one hasher (a worker thread for big installs) serves every model. */
async function startHasher(plans: PlannedModel[], store: Store, root: string): Promise<FileHasher> {
  const neededBytes = plans.reduce((sum, p) => sum + p.plan.neededBytes, 0);
  await checkFreeSpace(store, root, neededBytes);
  const hasher = createFileHasher(neededBytes);
  for (const p of plans) p.env.hasher = hasher;
  return hasher;
}

/** Groups run in parallel, the models of a group one after another; the first failure is thrown once all settled. */
async function assembleAll(assembly: Assembly, plans: PlannedModel[]): Promise<void> {
  const { root, state, options } = assembly.run;
  // State writes are serialised: parallel models must not race their renames.
  let stateWrites = Promise.resolve();
  const saveState = () => (stateWrites = stateWrites.then(() => writeState(root, state)));
  const results = await Promise.allSettled(
    groupBySharedChunks(plans.map((p) => p.plan)).map(async (group) => {
      for (const [i, index] of group.entries()) await assembleOne(assembly, plans[index] as PlannedModel, i > 0, saveState);
    }),
  );
  if (options.signal?.aborted) throw abortError();
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}

async function assembleOne(assembly: Assembly, planned: PlannedModel, replan: boolean, saveState: () => Promise<void>): Promise<void> {
  const { run, out } = assembly;
  const { env, changed, counter } = planned;
  const begun = performance.now();
  // A model that waited for another one sharing its chunks plans again: those files are stored now.
  const plan = replan ? await planModel(env, planned.plan.target, planned.plan.content) : planned.plan;
  const { target, layout } = plan;
  run.emit({ type: 'start', name: target.name, model: target.model, resolved: target.resolved, totalBytes: layout.totalSize, neededBytes: plan.fetchBytes });
  run.state.models[target.name] = await executePlan(env, plan);
  await saveState();
  counter.report();
  const { network, cache } = counter.counts;
  const source: ModelSource = network === 0 ? 'cache' : cache === 0 && plan.neededBytes === layout.totalSize ? 'network' : 'mixed';
  const result = resultFor(target, layout.totalSize, source, network, layout.totalSize - network, performance.now() - begun, changed);
  out.installed.push(result);
  run.emit({ type: 'done', result });
}

/** Models no longer in models.yaml: remove the files provably ours, report the rest as left in place. */
async function removeExtraneous(run: InstallRun, extraneous: string[], out: SlowPathResult): Promise<void> {
  for (const name of extraneous) {
    const record = run.state.models[name] as InstalledModel;
    out.leftInPlace.push(...(await removeRecorded(run.root, record)));
    delete run.state.models[name];
    run.emit({ type: 'removed', name, path: resolve(run.root, record.path) });
  }
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
function groupBySharedChunks(plans: ModelPlan[]): number[][] {
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
