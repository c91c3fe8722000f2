/**
 * What the tool may delete or replace: only what its own records say it wrote, after checking the
 * record against the disk with lstat (never following a symlink). Everything else under an install
 * root belongs to the user: an install refuses to replace it (exit 7) unless `--force`, which moves
 * it aside instead of deleting it.
 */
import { lstat, readdir, realpath, rename, rm, rmdir, unlink } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { ModelsError } from '../util/errors.js';
import { alive, deadTempFiles } from '../util/fsutil.js';
import { sha256File } from '../util/hash.js';
import type { ManifestLayout } from '../registry/manifest.js';
import { INTEGRITY_FILE, type InstalledFile, type InstalledModel } from './state.js';

interface TreeEntry {
  /** Relative path, with "/" separators. */
  path: string;
  kind: 'file' | 'dir' | 'other';
  size: number;
  mtimeMs: number;
}

/** Every entry below `dir`, by lstat: symlinks are reported as "other" and never followed. */
async function walk(dir: string, prefix = '', out: TreeEntry[] = []): Promise<TreeEntry[]> {
  for (const name of await readdir(dir)) {
    const path = prefix ? `${prefix}/${name}` : name;
    const info = await lstat(join(dir, name));
    const kind = info.isDirectory() ? 'dir' : info.isFile() ? 'file' : 'other';
    out.push({ path, kind, size: info.size, mtimeMs: info.mtimeMs });
    if (kind === 'dir') await walk(join(dir, name), path, out);
  }
  return out;
}

export type Ownership = { state: 'absent' | 'empty' | 'ours' } | { state: 'foreign'; reason: string };

/**
 * Whether `dest` may be replaced. Ours: a real folder holding nothing but files the record lists
 * (missing or modified ones are repaired from the lock). Anything else there is the user's.
 */
export async function ownershipOf(dest: string, record: InstalledModel | undefined): Promise<Ownership> {
  const info = await lstat(dest).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!info) return { state: 'absent' };
  if (info.isSymbolicLink()) return { state: 'foreign', reason: 'it is a symlink' };
  if (!info.isDirectory()) return { state: 'foreign', reason: 'it is a file, not a model folder' };
  const entries = await walk(dest);
  if (entries.length === 0) return { state: 'empty' };
  if (!record) return { state: 'foreign', reason: 'no install record names it' };
  const files = new Set(record.files.map((f) => f.path));
  const folders = new Set(record.files.flatMap((f) => f.path.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))));
  const stranger = entries.find((e) => (e.kind === 'file' ? !files.has(e.path) : e.kind === 'dir' ? !folders.has(e.path) : true));
  if (stranger) return { state: 'foreign', reason: `${stranger.path} is not one of the files it installed` };
  return { state: 'ours' };
}

/**
 * A folder with no (valid) record is still ours when it holds exactly the manifest's files with
 * their sha256: the state was lost or corrupted, and is rebuilt by hashing. Returns the record.
 */
export async function recordByHashing(dest: string, layout: ManifestLayout, shas: (string | undefined)[], base: Omit<InstalledModel, 'files'>): Promise<InstalledModel | undefined> {
  const entries = await walk(dest).catch(() => undefined);
  if (!entries) return undefined;
  const onDisk = new Map(entries.filter((e) => e.kind !== 'dir').map((e) => [e.path, e]));
  if (onDisk.size !== layout.files.length) return undefined;
  const files: InstalledFile[] = [];
  for (const file of layout.files) {
    const entry = onDisk.get(file.path);
    const sha = shas[file.index];
    if (!entry || entry.kind !== 'file' || entry.size !== file.size || !sha) return undefined;
    if ((await sha256File(join(dest, file.path)).catch(() => '')) !== sha) return undefined;
    files.push({ path: file.path, size: file.size, sha256: sha, mtimeMs: entry.mtimeMs });
  }
  return { ...base, files };
}

/** The refusal for a destination the tool did not write. */
export function foreignError(name: string, dest: string, reason: string): ModelsError {
  return new ModelsError('E_STORAGE', `${name}: refusing to replace ${dest}: it was not written by xprim-models (${reason})`, {
    hint: 'move it away or choose another `path:` for this model; or run `models install --force` to move it aside (it is renamed, not deleted)',
  });
}

/** Where `--force` moves a destination it replaces: beside it, with a timestamp. Never cleaned up. */
export function replacedPath(dest: string, now = new Date()): string {
  return `${dest}.xprim-replaced-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
}

/** True when every folder from `root` down to `path`'s parent is a real folder (no symlink), and it stays inside. */
async function reachableWithoutLinks(root: string, path: string): Promise<boolean> {
  const rel = relative(root, path);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`)) return false;
  let current = root;
  for (const part of rel.split(sep).slice(0, -1)) {
    current = join(current, part);
    const info = await lstat(current).catch(() => undefined);
    if (!info || !info.isDirectory()) return false;
  }
  const [realRoot, realParent] = await Promise.all([realpath(root), realpath(dirname(path))]).catch(() => ['', '']);
  return realRoot !== '' && (realParent === realRoot || realParent.startsWith(`${realRoot}${sep}`));
}

/**
 * Remove an extraneous model: only the files its record lists, found by lstat inside a real
 * folder reached without symlinks, and only while they still have the recorded size and mtime.
 * Then the folders this leaves empty. Returns what was left in place (not provably ours).
 */
export async function removeRecorded(root: string, record: InstalledModel): Promise<string[]> {
  const dest = join(root, record.path);
  const info = await lstat(dest).catch(() => undefined);
  if (!info) return [];
  if (!info.isDirectory() || !(await reachableWithoutLinks(root, dest))) return [dest];
  const recorded = new Map(record.files.map((f) => [f.path, f]));
  const entries = await walk(dest);
  const kept: string[] = [];
  for (const entry of entries) {
    if (entry.kind === 'dir') continue;
    const file = recorded.get(entry.path);
    if (entry.kind === 'file' && file && file.size === entry.size && Math.abs(file.mtimeMs - entry.mtimeMs) < 1) await unlink(join(dest, entry.path));
    else kept.push(join(dest, entry.path));
  }
  // Deepest first; a folder that still holds something stays.
  const folders = entries.filter((e) => e.kind === 'dir').map((e) => join(dest, e.path));
  for (const folder of [...folders.sort().reverse(), dest]) await rmdir(folder).catch(() => undefined);
  return kept;
}

/** Staging and swapped-out folders: `<dest>.xprim-staging-<pid>-<8 hex>`, `<dest>.xprim-old-<pid>-<8 hex>` (assemble.ts). */
const SWAP_FOLDER = /^(.+)\.xprim-(staging|old)-(\d+)-[0-9a-f]{8}$/;

/** The private store of `--no-cache`, inside the install root (a reserved name: no model can live there). */
export const TEMP_STORE = '.xprim-tmp-store';

export interface Leftover {
  path: string;
  kind: 'temp-file' | 'staging' | 'old' | 'temp-store';
  /** For 'old': the model folder it was swapped out of. */
  dest?: string;
}

/**
 * What killed runs left in this root, provably ours: temp files and staging/old folders carry a
 * dead writer's pid and sit beside a model folder; the private store has a reserved name. Kept for
 * `--no-cache` runs, which resume from that store.
 */
export async function findLeftovers(root: string, dests: string[], noCache: boolean): Promise<Leftover[]> {
  const found: Leftover[] = (await deadTempFiles(root)).map((path) => ({ path, kind: 'temp-file' }));
  const tempStore = await lstat(join(root, TEMP_STORE)).catch(() => undefined);
  if (tempStore && (!noCache || tempStore.isSymbolicLink())) found.push({ path: join(root, TEMP_STORE), kind: 'temp-store' });
  const byParent = new Map<string, Set<string>>();
  for (const dest of dests) byParent.set(dirname(dest), (byParent.get(dirname(dest)) ?? new Set()).add(basename(dest)));
  for (const [parent, bases] of byParent) {
    if (parent !== root && !(await reachableWithoutLinks(root, join(parent, 'x')))) continue;
    for (const name of await readdir(parent).catch(() => [] as string[])) {
      const match = SWAP_FOLDER.exec(name);
      if (!match || !bases.has(match[1] as string) || alive(Number(match[3]))) continue;
      const path = join(parent, name);
      if (!(await lstat(path).catch(() => undefined))?.isDirectory()) continue;
      found.push(match[2] === 'old' ? { path, kind: 'old', dest: join(parent, match[1] as string) } : { path, kind: 'staging' });
    }
  }
  return found;
}

/**
 * Clean them up (the caller holds the root's install lock). An old folder whose model folder is
 * gone (killed between the two renames of a promote) holds the complete previous model: put back.
 * rm never follows a symlink: a link in place of the private store goes, not what it points at.
 */
export async function cleanLeftovers(leftovers: Leftover[]): Promise<void> {
  for (const leftover of leftovers) {
    if (leftover.kind === 'temp-file') await unlink(leftover.path).catch(() => undefined);
    else if (leftover.kind === 'old' && leftover.dest && !(await lstat(leftover.dest).catch(() => undefined))) await rename(leftover.path, leftover.dest);
    else await rm(leftover.path, { recursive: true, force: true });
  }
}

/**
 * A root outside the project (an absolute `root:` or `--root`) must be absent, empty, or ours
 * (it holds our integrity file): installing into a home folder or a system folder is refused.
 */
export async function checkForeignRoot(root: string): Promise<void> {
  const names = await readdir(root).catch(() => undefined);
  if (!names || names.length === 0 || names.includes(INTEGRITY_FILE)) return;
  throw new ModelsError('E_STORAGE', `refusing to install into ${root}: it is not empty and holds no ${INTEGRITY_FILE}, so it was not made by xprim-models`, {
    hint: 'choose an empty or new folder for the install root; or run `models install --force` (folders in the way are moved aside, not deleted)',
  });
}
