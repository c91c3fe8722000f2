/**
 * `install`: from a lock (written first unless --frozen) to verified files in place. The fast path
 * (everything recorded and unchanged) stats files and returns: no network, no hashing, no store.
 * The steps: open the run, try the quick path, lock, sort what is in place, install the rest.
 */
import { resolve } from 'node:path';
import { destinations, extraneousModels, frozenCheck, selectEntries, targetFor } from './entries.js';
import { rememberInputs, sortInPlace, tryUpToDate } from './in-place.js';
import { findLeftovers } from './ownership.js';
import { checkRootPlacement } from './preflight.js';
import type { InstallRun } from './slow-path.js';
import { readState } from './state.js';
import type { InstallOptions, InstallResult } from './types.js';
import { type LockedModel, lockStatus } from '../project/lockfile.js';
import type { Project } from '../project/project.js';
import type { Session } from '../project/session.js';
import { checkEnvironment, concurrencyFrom, lockTimeoutFrom } from '../project/settings.js';
import { GENERATOR } from '../util/version.js';

const DEFAULT_LOCK_TIMEOUT_MS = 10 * 60 * 1000;

export async function install(project: Project, options: InstallOptions = {}): Promise<InstallResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const run = await openRun(project, options);
  const quick = run.dirty ? undefined : await tryUpToDate(project, run.root, run.state, options, run.emit);
  if (quick) return { ...quick, durationMs: elapsed() };
  const { session, lockWritten } = await lockUnlessFrozen(run);
  const lock = project.lock as NonNullable<Project['lock']>;
  const entries = selectEntries(project.config.models, options.only, options.platform);
  const targets = entries.map((entry) => targetFor(project, run.root, entry, lock.models[entry.name] as LockedModel));
  const { skipped, pending } = await sortInPlace(targets, lock, run.state, Boolean(options.verify), run.emit);
  const extraneous = extraneousModels(project, Object.keys(run.state.models), options.only);
  if (pending.length === 0 && extraneous.length === 0 && !run.dirty) {
    await session?.close();
    await rememberInputs(project, run.root, run.state, options.only);
    return { installed: [], skipped, removed: [], movedAside: [], leftInPlace: [], bytesDownloaded: 0, bytesFromCache: 0, durationMs: elapsed(), root: run.root, lockWritten };
  }
  // Loaded only when there is work: the network, store and source layers are most of the CLI's code.
  const { installPending } = await import('./slow-path.js');
  const { installed, movedAside, leftInPlace } = await installPending(run, session, lock, pending, extraneous);
  installed.sort((a, b) => a.name.localeCompare(b.name));
  const bytesDownloaded = installed.reduce((s, r) => s + r.bytesDownloaded, 0);
  const bytesFromCache = installed.reduce((s, r) => s + r.bytesFromCache, 0);
  // Same key order as the quick path: --json prints this object as it is.
  return { installed, skipped, removed: extraneous, movedAside, leftInPlace, bytesDownloaded, bytesFromCache, durationMs: elapsed(), root: run.root, lockWritten };
}

/** Settings are checked up front, whether or not there is work to do; then the root and its records. */
async function openRun(project: Project, options: InstallOptions): Promise<InstallRun> {
  const env = options.env ?? process.env;
  checkEnvironment(env);
  concurrencyFrom(options.concurrency, env);
  const lockTimeoutMs = options.lockTimeoutMs ?? lockTimeoutFrom(env, DEFAULT_LOCK_TIMEOUT_MS);
  const root = resolve(options.root ?? project.config.root);
  const outside = checkRootPlacement(project, root);
  const state = await readState(root, GENERATOR);
  // Leftovers of a killed run send even an up-to-date install down the slow path, which cleans them.
  const leftovers = await findLeftovers(root, destinations(project, root, Object.values(state.models)), Boolean(options.noCache));
  const emit = options.onEvent ?? (() => undefined);
  return { project, options, emit, env, root, lockTimeoutMs, outside, state, dirty: leftovers.length > 0 };
}

/** --frozen refuses a stale lock; otherwise a stale lock is re-resolved and written (its session is reused). */
async function lockUnlessFrozen(run: InstallRun): Promise<{ session: Session | undefined; lockWritten: boolean }> {
  const { project, options, emit } = run;
  if (options.frozen) {
    frozenCheck(project);
    return { session: undefined, lockWritten: false };
  }
  if (lockStatus(project.config, project.lock).inSync) return { session: undefined, lockWritten: false };
  const [{ Session }, { lockProject }] = await Promise.all([import('../project/session.js'), import('../sources/lock-project.js')]);
  const session = new Session(project.config, options);
  const locked = await lockProject(session, project, options.signal ? { signal: options.signal } : {});
  emit({ type: 'locked', changes: locked.changes.length, removed: locked.removed.length, written: locked.written });
  for (const change of locked.changes) if (change.note) emit({ type: 'warning', name: change.name, message: `${change.name}: ${change.note}` });
  return { session, lockWritten: locked.written };
}
