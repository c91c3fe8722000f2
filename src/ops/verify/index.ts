/**
 * `models verify`: re-hash installed files against the locked manifest. Works offline: expected
 * sizes and sha256 come from models.lock, else the store's learned hashes, else the install state;
 * a file with none of those (a reference manifest without per-file hashes and no install record) is
 * checked by re-hashing the manifest's chunks over the installed byte stream, and only then is the
 * manifest read (from the store, or fetched unless offline).
 *
 * Hashing is streaming (bounded memory) and runs over several files at once.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { ModelEntry } from '../../project/config.js';
import { ModelsError, abortError } from '../../util/errors.js';
import { HashPool } from '../../store/file-hasher.js';
import { selectEntries } from '../../install/entries.js';
import { type LockedModel, type Lockfile, entrySpecHash } from '../../project/lockfile.js';
import type { Project } from '../../project/project.js';
import { Session } from '../../project/session.js';
import { readState } from '../../install/state.js';
import { Store, defaultCacheDir } from '../../store/store.js';
import { GENERATOR } from '../../util/version.js';
import { adapterFor } from '../../sources/index.js';
import type { VerifyContext } from './context.js';
import { verifyModel } from './model.js';
import type { VerifiedModel, VerifyOptions, VerifyReport } from './types.js';

export type * from './types.js';

export async function verifyProject(project: Project, options: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now();
  const { config } = project;
  const lock = lockOf(project);
  const root = resolve(options.root ?? config.root);
  const entries = selectEntries(config.models, options.names, undefined, '');
  const state = await readState(root, GENERATOR);
  const { pool, limit } = await hashingFor(options, entries.reduce((sum, e) => sum + (lock.models[e.name]?.size ?? 0), 0));
  const signal = options.signal;
  let bytesHashed = 0;
  const count = (n: number) => (bytesHashed += n);
  const store = new Store(options.cacheDir ?? defaultCacheDir(options.env ?? process.env));
  // Only for a manifest missing from the store.
  let session: Session | undefined;
  const sessionFor = () => (session ??= new Session(config, { cacheDir: store.root, ...(options.env ? { env: options.env } : {}), offline: Boolean(options.offline) }));
  const loadLayout = async (entry: ModelEntry, locked: LockedModel) => (await adapterFor(entry.kind).content({ session: sessionFor(), store, signal }, entry, locked)).layout;
  const ctx: VerifyContext = { project, store, state, pool, limit, signal, count, loadLayout };
  let models: VerifiedModel[];
  try {
    models = await verifyEach(ctx, lock, entries, root);
  } finally {
    await session?.close();
    await pool?.close();
  }
  return reportOf(models, root, bytesHashed, started);
}

function lockOf(project: Project): Lockfile {
  if (!project.lock) {
    throw new ModelsError('E_NOT_INSTALLED', `${project.lockPath} not found: nothing is locked, so nothing is installed to verify`, {
      hint: 'run `models install` first',
    });
  }
  return project.lock;
}

/** How many files are hashed at once, and where: big verifies on worker threads, one per core (the main thread only schedules). */
async function hashingFor(options: VerifyOptions, totalBytes: number): Promise<Pick<VerifyContext, 'pool' | 'limit'>> {
  const concurrency = options.concurrency ?? Math.min(4, availableParallelism());
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ModelsError('E_USAGE', `concurrency must be a positive integer, got ${String(options.concurrency)}`);
  }
  const { default: pLimit } = await import('p-limit');
  // Small verifies are not worth a thread's start-up.
  const pool = totalBytes >= 32 * 1024 * 1024 && options.concurrency === undefined ? new HashPool(availableParallelism()) : undefined;
  return { pool, limit: pLimit(pool ? 4 * availableParallelism() : concurrency) };
}

/** One model after another (each hashes its files in parallel); an entry the lock does not match is reported missing. */
async function verifyEach(ctx: VerifyContext, lock: Lockfile, entries: ModelEntry[], root: string): Promise<VerifiedModel[]> {
  const models: VerifiedModel[] = [];
  for (const entry of entries) {
    if (ctx.signal?.aborted) throw abortError();
    const locked = lock.models[entry.name];
    const dest = resolve(root, entry.path);
    if (!locked || locked.spec !== entrySpecHash(entry)) {
      models.push({ name: entry.name, model: entry.model, resolved: locked?.resolved ?? entry.version, manifest: locked?.manifest ?? '', path: dest, status: 'missing', files: [], detail: `not locked (or models.lock is out of date): run \`models install\`` });
      continue;
    }
    models.push(await verifyModel(ctx, entry, locked, dest));
  }
  return models;
}

/** Exit 6 when any file differs, else 4 when anything is missing. */
function reportOf(models: VerifiedModel[], root: string, bytesHashed: number, started: number): VerifyReport {
  const allFiles = models.flatMap((m) => m.files);
  const differs = allFiles.some((f) => f.status === 'modified' || f.status === 'corrupt');
  const missing = models.some((m) => m.status === 'missing');
  const exitCode = differs ? 6 : missing ? 4 : 0;
  return {
    ok: exitCode === 0,
    exitCode,
    root,
    models,
    filesChecked: allFiles.length,
    bytesHashed,
    durationMs: Math.round(performance.now() - started),
  };
}
