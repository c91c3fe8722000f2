/**
 * `models verify`: re-hash installed files against the locked manifest. Works offline: expected
 * sizes and sha256 come from models.lock, else the store's learned hashes, else the install state;
 * a file with none of those (a reference manifest without per-file hashes and no install record) is
 * checked by re-hashing the manifest's chunks over the installed byte stream, and only then is the
 * manifest read (from the store, or fetched unless offline).
 *
 * Hashing is streaming (bounded memory) and runs over several files at once.
 */
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import type { ModelEntry } from '../project/config.js';
import { ModelsError, abortError } from '../util/errors.js';
import { hashSegments } from '../fetch/fetch.js';
import { HashPool } from '../store/file-hasher.js';
import { EMPTY_SHA256, sha256File } from '../util/hash.js';
import { selectEntries } from '../install/install.js';
import { type LockedModel, entrySpecHash } from '../project/lockfile.js';
import type { Project } from '../project/project.js';
import { type ChunkSpan, type FileSpan, type ManifestLayout, chunksOverlapping, filesOverlapping } from '../registry/manifest.js';
import { Session } from '../project/session.js';
import { readState } from '../install/state.js';
import { type Segment, Store, defaultCacheDir } from '../store/store.js';
import { GENERATOR } from '../util/version.js';
import { adapterFor } from '../sources/index.js';
import { checkLockEntry } from '../install/lock-contract.js';
import { contrastHashes } from '../util/hash-contrast.js';

export type VerifyFileStatus = 'ok' | 'missing' | 'modified' | 'corrupt';
export type VerifyModelStatus = 'ok' | 'missing' | 'corrupt';

export interface VerifiedFile {
  path: string;
  status: VerifyFileStatus;
  /** Expected size. */
  size: number;
  /** What is on disk, when it differs. */
  actualSize?: number;
  /** How the content was checked: a whole-file sha256, the manifest's chunk hashes, or (no hash known) the size only. */
  method: 'sha256' | 'chunks' | 'size';
  expectedSha256?: string;
  actualSha256?: string;
  detail?: string;
}

export interface VerifiedModel {
  name: string;
  model: string;
  resolved: string;
  manifest: string;
  /** Absolute install folder. */
  path: string;
  status: VerifyModelStatus;
  files: VerifiedFile[];
  detail?: string;
}

export interface VerifyReport {
  ok: boolean;
  /** 0, 4 (something missing) or 6 (something differs; wins over 4). */
  exitCode: 0 | 4 | 6;
  root: string;
  models: VerifiedModel[];
  filesChecked: number;
  bytesHashed: number;
  durationMs: number;
}

export interface VerifyOptions {
  /** Model names or tags; default every entry for this platform. */
  names?: string[];
  /** Install root (default: the configured root). */
  root?: string;
  /** Files hashed at once (default: min(4, CPUs)). */
  concurrency?: number;
  signal?: AbortSignal;
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Never fetch a manifest missing from the store (only needed for files without any known sha256). */
  offline?: boolean;
}

async function hashFile(path: string, size: number, pool: HashPool | undefined, signal: AbortSignal | undefined, count: (n: number) => void): Promise<string> {
  if (signal?.aborted) throw abortError();
  const digest = pool ? await pool.hash(path, size) : await sha256File(path);
  count(size);
  return digest;
}

interface FileTask {
  file: VerifiedFile;
  abs: string;
  expected: string | undefined;
  sizeOk: boolean;
}

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
      models.push(await verifyModel(entry, locked, dest));
    }
  } finally {
    await session?.close();
    await pool?.close();
  }

  async function verifyModel(entry: ModelEntry, locked: LockedModel, dest: string): Promise<VerifiedModel> {
    const record = state.models[entry.name];
    // A lock that contradicts its manifest is invalid (exit 2), as install says: not a corrupt file.
    await checkLockEntry(project.lockPath, entry.name, locked, record, () => loadLayout(entry, locked).catch(() => undefined));
    const recorded = record && record.manifest === locked.manifest ? new Map(record.files.map((f) => [f.path, f.sha256])) : new Map<string, string>();
    const learned = locked.files.some((f) => !f.sha256) ? await store.readKnownShas(locked.manifest) : {};
    const tasks: FileTask[] = await Promise.all(
      locked.files.map(async (f): Promise<FileTask> => {
        const abs = join(dest, ...f.path.split('/'));
        const expected = f.size === 0 ? EMPTY_SHA256 : (f.sha256 ?? learned[f.path] ?? recorded.get(f.path));
        const file: VerifiedFile = { path: f.path, status: 'ok', size: f.size, method: expected ? 'sha256' : 'chunks', ...(expected ? { expectedSha256: expected } : {}) };
        try {
          const info = await stat(abs);
          if (!info.isFile()) return { file: { ...file, status: 'modified', detail: 'not a regular file' }, abs, expected, sizeOk: false };
          if (info.size !== f.size) {
            return { file: { ...file, status: 'modified', actualSize: info.size, detail: `size ${info.size}, expected ${f.size}` }, abs, expected, sizeOk: false };
          }
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'ENOTDIR') return { file: { ...file, status: 'missing', detail: 'not found' }, abs, expected, sizeOk: false };
          return { file: { ...file, status: 'modified', detail: `cannot access (${code ?? String(error)})` }, abs, expected, sizeOk: false };
        }
        return { file, abs, expected, sizeOk: true };
      }),
    );

    // Phase 1: every file with a known sha256.
    await Promise.all(
      tasks
        .filter((t) => t.sizeOk && t.expected && t.file.size > 0)
        .map((t) =>
          limit(async () => {
            let actual: string;
            try {
              actual = await hashFile(t.abs, t.file.size, pool, signal, count);
            } catch (error) {
              if (signal?.aborted) throw abortError();
              t.file.status = 'modified';
              t.file.detail = `cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
              return;
            }
            if (actual !== t.expected) {
              t.file.status = 'corrupt';
              t.file.actualSha256 = actual;
              const [found, expected] = contrastHashes(actual, t.expected);
              t.file.detail = `sha256 ${found}, expected ${expected}`;
            }
          }),
        ),
    );

    // Phase 2: files without any known hash, through the manifest's chunks.
    const byChunks = tasks.filter((t) => t.sizeOk && !t.expected);
    if (byChunks.length > 0) await verifyByChunks(entry, locked, tasks, byChunks);

    const files = tasks.map((t) => t.file);
    const bad = files.filter((f) => f.status !== 'ok');
    let status: VerifyModelStatus = bad.some((f) => f.status === 'modified' || f.status === 'corrupt') ? 'corrupt' : bad.length > 0 ? 'missing' : 'ok';
    let detail: string | undefined;
    if (files.length === 0 && !(await stat(dest).then((i) => i.isDirectory(), () => false))) {
      status = 'missing';
      detail = 'folder not found';
    } else if (files.length > 0 && files.every((f) => f.status === 'missing')) {
      detail = 'not installed: run `models install`';
    }
    if (record && record.manifest !== locked.manifest) {
      detail = `installed ${record.model}@${record.resolved}, but models.lock pins ${locked.resolved}: run \`models install\``;
    }
    return { name: entry.name, model: locked.model, resolved: locked.resolved, manifest: locked.manifest, path: dest, status, files, ...(detail ? { detail } : {}) };
  }

  async function verifyByChunks(entry: ModelEntry, locked: LockedModel, tasks: FileTask[], byChunks: FileTask[]): Promise<void> {
    let layout: ManifestLayout;
    try {
      layout = await loadLayout(entry, locked);
    } catch (error) {
      for (const t of byChunks) {
        t.file.method = 'size';
        t.file.detail = `size checked only: no sha256 known and the manifest is unavailable (${(error as Error).message})`;
      }
      return;
    }
    const taskOf = new Map(tasks.map((t) => [t.file.path, t]));
    const spanOf = new Map(layout.files.map((f) => [f.path, f]));
    const chunks = new Map<number, ChunkSpan>();
    for (const t of byChunks) {
      const span = spanOf.get(t.file.path) as FileSpan;
      for (const chunk of chunksOverlapping(layout, span.offset, span.size)) chunks.set(chunk.index, chunk);
    }
    const failed = new Map<string, string>();
    const unchecked = new Map<string, string>();
    await Promise.all(
      [...chunks.values()].map((chunk) =>
        limit(async () => {
          if (signal?.aborted) throw abortError();
          const overlapping = filesOverlapping(layout, chunk);
          const segments: Segment[] = [];
          const unreadable: string[] = [];
          for (const f of overlapping) {
            const t = taskOf.get(f.path) as FileTask;
            if (!t.sizeOk || t.file.status !== 'ok') unreadable.push(f.path);
            const from = Math.max(chunk.offset, f.offset);
            const to = Math.min(chunk.offset + chunk.size, f.offset + f.size);
            segments.push({ path: t.abs, offset: from - f.offset, length: to - from });
          }
          const suspects = overlapping.filter((f) => !(taskOf.get(f.path) as FileTask).expected).map((f) => f.path);
          if (unreadable.length > 0) {
            // A neighbour sharing this chunk is itself bad: this chunk cannot tell about the others.
            for (const path of suspects) unchecked.set(path, `chunk ${chunk.index} also holds ${unreadable.join(', ')}, which ${unreadable.length === 1 ? 'is' : 'are'} bad`);
            return;
          }
          let actual: string;
          try {
            actual = await hashSegments(segments);
          } catch {
            actual = '';
          }
          count(chunk.size);
          if (actual !== chunk.hash) for (const path of suspects) failed.set(path, `chunk ${chunk.index} (${chunk.hash.slice(0, 12)}…) does not match`);
        }),
      ),
    );
    for (const t of byChunks) {
      const reason = failed.get(t.file.path);
      if (reason) {
        t.file.status = 'corrupt';
        t.file.detail = reason;
      } else if (unchecked.has(t.file.path)) {
        t.file.detail = `partly unchecked: ${unchecked.get(t.file.path) as string}`;
      }
    }
  }

  async function loadLayout(entry: ModelEntry, locked: LockedModel): Promise<ManifestLayout> {
    // A session costs nothing until a manifest missing from the store has to be fetched.
    return (await adapterFor(entry.kind).content({ session: sessionFor(), store, signal }, entry, locked)).layout;
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
