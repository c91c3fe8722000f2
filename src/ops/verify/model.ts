/**
 * One model of `models verify`: stat every file, check large files by their chunks on every core,
 * hash the other files with a known sha256, the rest through chunks.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { abortError } from '../../util/errors.js';
import { EMPTY_SHA256 } from '../../util/hash.js';
import { contrastHashes } from '../../util/hash-contrast.js';
import type { ModelEntry } from '../../project/config.js';
import type { LockedFile, LockedModel } from '../../project/lockfile.js';
import { FS_CONCURRENCY, forEachLimited } from '../../util/pool.js';
import type { InstalledModel } from '../../install/state.js';
import { checkLockEntry } from '../../install/lock-contract.js';
import { type FileTask, type VerifyContext, hashFile } from './context.js';
import { verifyByChunks } from './chunks.js';
import { checkLargeFilesByChunks } from './split.js';
import type { VerifiedFile, VerifiedModel, VerifyModelStatus } from './types.js';

export async function verifyModel(ctx: VerifyContext, entry: ModelEntry, locked: LockedModel, dest: string): Promise<VerifiedModel> {
  const { project, state, store } = ctx;
  const record = state.models[entry.name];
  // A lock that contradicts its manifest is invalid (exit 2), as install says: not a corrupt file.
  await checkLockEntry(project.lockPath, entry.name, locked, record, () => ctx.loadLayout(entry, locked).catch(() => undefined));
  const recorded = record && record.manifest === locked.manifest ? new Map(record.files.map((f) => [f.path, f.sha256])) : new Map<string, string>();
  const learned = locked.files.some((f) => !f.sha256) ? await store.readKnownShas(locked.manifest) : {};
  const tasks = await statFiles(locked, dest, learned, recorded);
  await checkLargeFilesByChunks(ctx, entry, locked, tasks);
  await hashKnownFiles(ctx, tasks);
  // Files without any known hash, through the manifest's chunks.
  const byChunks = tasks.filter((t) => t.sizeOk && !t.expected);
  if (byChunks.length > 0) await verifyByChunks(ctx, entry, locked, tasks, byChunks);
  return modelVerdict(entry, locked, dest, tasks, record);
}

/** One stat per file, a bounded number at a time: missing, not a file, the wrong size, or worth hashing. */
async function statFiles(locked: LockedModel, dest: string, learned: Record<string, string>, recorded: Map<string, string>): Promise<FileTask[]> {
  const tasks = new Array<FileTask>(locked.files.length);
  await forEachLimited(locked.files, FS_CONCURRENCY, async (f, i) => {
    tasks[i] = await statFile(f, dest, learned, recorded);
  });
  return tasks;
}

async function statFile(f: LockedFile, dest: string, learned: Record<string, string>, recorded: Map<string, string>): Promise<FileTask> {
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
}

/**
 * Every file with a known sha256, hashed and compared: a bounded number queued at a time, each
 * through the run's shared limit (models are verified side by side).
 */
async function hashKnownFiles(ctx: VerifyContext, tasks: FileTask[]): Promise<void> {
  const toHash = tasks.filter((t) => t.sizeOk && t.expected && t.file.size > 0 && !t.checkedByChunks);
  await forEachLimited(toHash, ctx.limit.concurrency, (t) => ctx.limit(() => hashKnownFile(ctx, t)));
}

async function hashKnownFile(ctx: VerifyContext, t: FileTask): Promise<void> {
  let actual: string;
  try {
    actual = await hashFile(ctx, t.abs, t.file.size);
  } catch (error) {
    if (ctx.signal?.aborted) throw abortError();
    t.file.status = 'modified';
    t.file.detail = `cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
    return;
  }
  if (actual !== t.expected) {
    t.file.status = 'corrupt';
    t.file.actualSha256 = actual;
    const [found, expected] = contrastHashes(actual, t.expected as string);
    t.file.detail = `sha256 ${found}, expected ${expected}`;
  }
}

/** The model's status from its files' statuses, and what to do about it. */
async function modelVerdict(entry: ModelEntry, locked: LockedModel, dest: string, tasks: FileTask[], record: InstalledModel | undefined): Promise<VerifiedModel> {
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

