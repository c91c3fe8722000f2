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
import { type LockedModel, entrySpecHash } from '../../project/lockfile.js';
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
  const { config, lock } = project;
  if (!lock) {
    throw new ModelsError('E_NOT_INSTALLED', `${project.lockPath} not found: nothing is locked, so nothing is installed to verify`, {
      hint: 'run `models install` first',
    });
  }
  const root = resolve(options.root ?? config.root);
  const entries = selectEntries(config.models, options.names, undefined, '');
  const state = await readState(root, GENERATOR);
  const concurrency = options.concurrency ?? Math.min(4, availableParallelism());
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ModelsError('E_USAGE', `concurrency must be a positive integer, got ${String(options.concurrency)}`);
  }
  const { default: pLimit } = await import('p-limit');
  // Big verifies hash on worker threads, one per core (the main thread only schedules);
  // small ones are not worth a thread's start-up.
  const totalBytes = entries.reduce((sum, e) => sum + (lock.models[e.name]?.size ?? 0), 0);
  const pool = totalBytes >= 32 * 1024 * 1024 && options.concurrency === undefined ? new HashPool(availableParallelism()) : undefined;
  const limit = pLimit(pool ? 4 * availableParallelism() : concurrency);
  const signal = options.signal;
  let bytesHashed = 0;
  const count = (n: number) => (bytesHashed += n);
  const store = new Store(options.cacheDir ?? defaultCacheDir(options.env ?? process.env));
  // Only for a manifest missing from the store.
  let session: Session | undefined;
  const sessionFor = () => (session ??= new Session(config, { cacheDir: store.root, ...(options.env ? { env: options.env } : {}), offline: Boolean(options.offline) }));

  const loadLayout = async (entry: ModelEntry, locked: LockedModel) => (await adapterFor(entry.kind).content({ session: sessionFor(), store, signal }, entry, locked)).layout;
  const ctx: VerifyContext = { project, store, state, pool, limit, signal, count, loadLayout };
  const models: VerifiedModel[] = [];
  try {
    for (const entry of entries) {
      if (signal?.aborted) throw abortError();
      const locked = lock.models[entry.name];
      const dest = resolve(root, entry.path);
      if (!locked || locked.spec !== entrySpecHash(entry)) {
        models.push({ name: entry.name, model: entry.model, resolved: locked?.resolved ?? entry.version, manifest: locked?.manifest ?? '', path: dest, status: 'missing', files: [], detail: `not locked (or models.lock is out of date): run \`models install\`` });
        continue;
      }
      models.push(await verifyModel(ctx, entry, locked, dest));
    }
  } finally {
    await session?.close();
    await pool?.close();
  }

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
