/**
 * The shared content-addressed store (the "cache"). One copy of every byte, kept as whole files:
 *
 *   v1/files/<aa>/<sha256>     verified file contents, read-only; installs hardlink (or reflink/copy) from here
 *   v1/chunks/<aa>/<sha256>    chunk pointers: where a chunk's bytes sit inside stored files, so a chunk
 *                              already held is never fetched again without keeping a second copy of it
 *   v1/manifests/<sha256>      verified manifest bytes (offline installs and verify need no registry)
 *   v1/manifests/<sha256>.json per-file sha256 learned while installing (for manifests that lack them)
 *   v1/partial/<manifest>/     in-progress downloads: one file per wanted file + a journal, for resume
 *   v1/locks/                  cross-process locks
 *
 * Why files and not chunks: writing every byte once into a chunk cache and again into the
 * destination doubles disk writes, the bottleneck here. Like pnpm's store, the destination is linked
 * to the stored file, so a cold install writes each byte once and a warm install writes none.
 */
import { type Stats, constants, linkSync, lstatSync, renameSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, readFile, readdir, rm, unlink, utimes } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ModelsError, storageError } from '../util/errors.js';

import { isSha256, sha256File } from '../util/hash.js';
import { removeDeadTempFiles, writeFileAtomic } from '../util/fsutil.js';
import { FS_CONCURRENCY, forEachLimited } from '../util/pool.js';

export type LinkMode = 'auto' | 'hardlink' | 'reflink' | 'copy';

/** A run of bytes inside a stored (or partial) file. */
export interface Segment {
  path: string;
  offset: number;
  length: number;
}

/** How a chunk pointer names its bytes: by stored file hash, so it survives moves of the store. */
export interface StoredSegment {
  file: string;
  offset: number;
  length: number;
}

/** inode, size, mtimeMs, ctimeMs, link count: any write, chmod, rename or utimes changes the ctime. */
export type ObjectIdentity = [number, number, number, number, number];

const SUBFOLDERS = ['files', 'chunks', 'manifests', 'partial', 'locks'];

/** What a stored file looks like now, from a stat of it (or of a hardlink to it: the same inode). */
export function objectIdentityOf(info: Stats): ObjectIdentity {
  return [info.ino, info.size, info.mtimeMs, info.ctimeMs, info.nlink];
}

/**
 * Same inode, size and mtime, and the same ctime, unless the link count changed while the file
 * stayed read-only: adding or removing a hardlink (a project installed or `rm -rf models`) also moves
 * the ctime, and must not cost a re-hash of every stored file. Writing into a stored file takes a
 * chmod first (which leaves the shared inode writable, and so is caught) or root; a careless write
 * moves the mtime (caught); only a deliberate restore of mode and mtime would pass, and
 * `models verify` / `cache verify` hash it.
 */
function sameIdentity(now: ObjectIdentity, known: ObjectIdentity, readOnly: boolean): boolean {
  const close = (a: number, b: number) => Math.abs(a - b) < 1e-3;
  return now[0] === known[0] && now[1] === known[1] && close(now[2], known[2]) && (close(now[3], known[3]) || (now[4] !== known[4] && readOnly));
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MODELS_CACHE_DIR) return env.MODELS_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'xprim-models');
}

function fanout(dir: string, hash: string): string {
  if (!isSha256(hash)) throw new ModelsError('E_INTERNAL', `not a sha256: ${hash}`);
  return join(dir, hash.slice(0, 2), hash);
}

export class Store {
  readonly root: string;
  readonly dir: string;
  /** Fan-out folders known to exist: a model of thousands of files would mkdir each one thousands of times. */
  private readonly madeFolders = new Set<string>();

  constructor(root: string) {
    this.root = root;
    this.dir = join(root, 'v1');
  }

  objectPath(sha: string): string {
    return fanout(join(this.dir, 'files'), sha);
  }
  pointerPath(chunk: string): string {
    return fanout(join(this.dir, 'chunks'), chunk);
  }
  manifestPath(hash: string): string {
    if (!isSha256(hash)) throw new ModelsError('E_INTERNAL', `not a sha256: ${hash}`);
    return join(this.dir, 'manifests', hash);
  }
  partialDir(manifest: string): string {
    if (!isSha256(manifest)) throw new ModelsError('E_INTERNAL', `not a sha256: ${manifest}`);
    return join(this.dir, 'partial', manifest);
  }
  get lockDir(): string {
    return join(this.dir, 'locks');
  }

  async init(): Promise<void> {
    for (const sub of SUBFOLDERS) {
      try {
        await mkdir(join(this.dir, sub), { recursive: true });
      } catch (error) {
        throw storageError(error, 'create the cache folder', join(this.dir, sub));
      }
    }
    await this.assertNoSymlinks();
    await removeDeadTempFiles(join(this.dir, 'manifests'));
  }

  /**
   * The store's own folders are never symlinks: following one would let prune delete, or an install
   * write, outside the cache. (The cache folder itself may be a link the user made.)
   */
  async assertNoSymlinks(): Promise<void> {
    for (const path of [this.dir, ...SUBFOLDERS.map((sub) => join(this.dir, sub))]) {
      const info = await lstat(path).catch(() => undefined);
      if (info && !info.isDirectory()) {
        throw new ModelsError('E_STORAGE', `the cache folder ${path} is ${info.isSymbolicLink() ? 'a symlink' : 'not a folder'}: refusing to follow it`, {
          hint: `remove ${path} (only the link, not what it points at); the cache re-creates it`,
        });
      }
    }
  }

  /** True when a stored file with this hash and size exists (a real file: a planted symlink is not one). */
  async hasObject(sha: string, size: number): Promise<boolean> {
    try {
      const info = await lstat(this.objectPath(sha));
      return info.isFile() && info.size === size;
    } catch {
      return false;
    }
  }

  /**
   * A stored file may be linked into a project only while it is provably the bytes it is named
   * after: its identity (inode, size, mtime, ctime) is the one recorded when it was last verified,
   * or it is re-hashed now. A file changed in place (through a hardlinked install, or by hand) is
   * removed, so it is fetched again instead of spreading into another project.
   */
  async trustObject(sha: string, size: number, known: ObjectIdentity | undefined): Promise<'ok' | 'absent' | 'corrupt'> {
    const probe = this.probeObject(sha, size, known);
    if (probe !== 'unsure') return probe;
    if ((await sha256File(this.objectPath(sha)).catch(() => '')) === sha) return 'ok';
    await this.removeObject(sha);
    return 'corrupt';
  }

  /**
   * What one lstat says of a stored file (synchronous: installs probe thousands in batches):
   * absent (or not a real file of this size), ok (its identity is the verified one), or unsure
   * (it must be hashed: see trustObject).
   */
  probeObject(sha: string, size: number, known: ObjectIdentity | undefined): 'ok' | 'absent' | 'unsure' {
    const info = lstatQuietly(this.objectPath(sha));
    if (!info || !info.isFile() || info.size !== size) return 'absent';
    return known && sameIdentity(objectIdentityOf(info), known, (info.mode & 0o222) === 0) ? 'ok' : 'unsure';
  }

  /** The identity of a stored file now (after linking, since a new link changes its ctime). */
  identity(sha: string): ObjectIdentity | undefined {
    const info = lstatQuietly(this.objectPath(sha));
    return info?.isFile() ? objectIdentityOf(info) : undefined;
  }

  /**
   * A fresh folder for a download in progress: a symlink in its place is removed (never followed),
   * and so is a folder holding anything but real files (its resume state is then lost, not trusted).
   */
  async preparePartialDir(manifest: string): Promise<string> {
    const dir = this.partialDir(manifest);
    const info = await lstat(dir).catch(() => undefined);
    if (info && !info.isDirectory()) await unlink(dir);
    else if (info) {
      let foreign = false;
      await forEachLimited(await readdir(dir), FS_CONCURRENCY, async (name) => {
        if (!foreign && !(await lstat(join(dir, name)).then((i) => i.isFile(), () => false))) foreign = true;
      });
      if (foreign) await rm(dir, { recursive: true, force: true });
    }
    try {
      await mkdir(dir, { recursive: true });
    } catch (error) {
      throw storageError(error, 'create', dir);
    }
    return dir;
  }

  /** Move a verified file into the store, read-only (`readOnly`: it was created so, and needs no chmod). */
  async putObject(tempPath: string, sha: string, readOnly = false): Promise<string> {
    const target = this.objectPath(sha);
    try {
      const folder = dirname(target);
      if (!this.madeFolders.has(folder)) {
        await mkdir(folder, { recursive: true });
        this.madeFolders.add(folder);
      }
      if (!readOnly) await chmod(tempPath, 0o444);
      // Synchronous: no inode is created, and a thread-pool round trip per file cost more than the rename.
      renameSync(tempPath, target);
    } catch (error) {
      throw storageError(error, 'store', target);
    }
    return target;
  }

  async removeObject(sha: string): Promise<void> {
    await rm(this.objectPath(sha), { force: true });
  }

  async readManifest(hash: string): Promise<Buffer | undefined> {
    try {
      if (!(await lstat(this.manifestPath(hash))).isFile()) return undefined; // a planted symlink is not read
      const bytes = await readFile(this.manifestPath(hash));
      const now = new Date();
      await utimes(this.manifestPath(hash), now, now).catch(() => undefined); // last use, for LRU pruning
      return bytes;
    } catch {
      return undefined;
    }
  }

  async writeManifest(hash: string, bytes: Uint8Array): Promise<void> {
    const path = this.manifestPath(hash);
    try {
      // `models lock` writes here before any install has created the store's folders.
      await mkdir(dirname(path), { recursive: true });
      await writeFileAtomic(path, bytes, { durable: false }); // verified by hash whenever read
    } catch (error) {
      throw storageError(error, 'write', path);
    }
  }

  /** Per-file sha256 learned at install time, for manifests that do not carry them. */
  async readKnownShas(manifest: string): Promise<Record<string, string>> {
    return (await this.readSidecar(manifest)).files;
  }

  async writeKnownShas(manifest: string, files: Record<string, string>): Promise<void> {
    const sidecar = await this.readSidecar(manifest);
    await this.writeSidecar(manifest, { ...sidecar, files: { ...sidecar.files, ...files } });
  }

  /** Identities of this manifest's stored files when they were last verified (see trustObject). */
  async readIdentities(manifest: string): Promise<Record<string, ObjectIdentity>> {
    return (await this.readSidecar(manifest)).objects;
  }

  async writeIdentities(manifest: string, objects: Record<string, ObjectIdentity>): Promise<void> {
    const sidecar = await this.readSidecar(manifest);
    await this.writeSidecar(manifest, { ...sidecar, objects });
  }

  /** `manifests/<hash>.json`: learned file hashes and verified identities; re-checked on every use, so losing it is harmless. */
  private async readSidecar(manifest: string): Promise<{ files: Record<string, string>; objects: Record<string, ObjectIdentity> }> {
    const out = { files: {} as Record<string, string>, objects: {} as Record<string, ObjectIdentity> };
    try {
      const data = JSON.parse(await readFile(`${this.manifestPath(manifest)}.json`, 'utf8')) as { files?: Record<string, unknown>; objects?: Record<string, unknown> };
      for (const [path, sha] of Object.entries(data.files ?? {})) if (isSha256(sha)) out.files[path] = sha;
      for (const [sha, id] of Object.entries(data.objects ?? {})) {
        if (isSha256(sha) && Array.isArray(id) && id.length === 5 && id.every((n) => Number.isFinite(n))) out.objects[sha] = id as ObjectIdentity;
      }
    } catch {
      // none yet, or unreadable: start over
    }
    return out;
  }

  private async writeSidecar(manifest: string, data: { files: Record<string, string>; objects: Record<string, ObjectIdentity> }): Promise<void> {
    const body = { files: data.files, ...(Object.keys(data.objects).length > 0 ? { objects: data.objects } : {}) };
    await writeFileAtomic(`${this.manifestPath(manifest)}.json`, `${JSON.stringify(body, null, 1)}\n`, { durable: false }).catch(() => undefined);
  }

  async readPointer(chunk: string): Promise<StoredSegment[] | undefined> {
    try {
      const data = JSON.parse(await readFile(this.pointerPath(chunk), 'utf8')) as { segments?: StoredSegment[] };
      const segments = data.segments;
      if (!Array.isArray(segments) || !segments.every((s) => isSha256(s.file) && Number.isSafeInteger(s.offset) && Number.isSafeInteger(s.length))) {
        return undefined;
      }
      return segments;
    } catch {
      return undefined;
    }
  }

  async writePointer(chunk: string, segments: StoredSegment[]): Promise<void> {
    const path = this.pointerPath(chunk);
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, JSON.stringify({ segments }), { durable: false }); // re-verified on use
  }

  async removePointer(chunk: string): Promise<void> {
    await unlink(this.pointerPath(chunk)).catch(() => undefined);
  }
}

/**
 * Place a stored file at `dest`. `auto` never lets two installs share an inode: it hardlinks only
 * a stored file no other install links to (or whose other link is the file `replaces`, about to be
 * swapped out), else reflinks (copy-on-write, where the file system can) or copies. So a write into
 * one project's file can never change another project's; the store's own copy is identity-checked
 * before every reuse (Store.trustObject). `hardlink` shares the read-only inode with every project.
 */
export async function linkFile(source: string, dest: string, mode: LinkMode, replaces?: string): Promise<'hardlink' | 'reflink' | 'copy'> {
  return hardlinkIfAllowed(source, dest, mode, replaces) ? 'hardlink' : await cloneOrCopy(source, dest, mode);
}

/**
 * The synchronous half of linkFile (installs link thousands of files in batches): hardlink when
 * the mode allows it. False: the file must be cloned or copied instead (cloneOrCopy).
 */
export function hardlinkIfAllowed(source: string, dest: string, mode: LinkMode, replaces?: string): boolean {
  if (mode !== 'hardlink' && !(mode === 'auto' && linkedNowhereElse(source, replaces))) return false;
  try {
    linkSync(source, dest);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (mode === 'hardlink' || !['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP'].includes(code ?? '')) {
      throw storageError(error, `hardlink ${source} to`, dest);
    }
    return false;
  }
}

/** A copy-on-write clone where the file system can make one (and the mode allows it), else a copy. */
export async function cloneOrCopy(source: string, dest: string, mode: LinkMode): Promise<'reflink' | 'copy'> {
  if (mode === 'reflink' || (mode === 'auto' && !noReflink)) {
    try {
      await copyFile(source, dest, constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL);
      return 'reflink';
    } catch (error) {
      if (mode === 'reflink') throw storageError(error, `reflink ${source} to`, dest);
      // ext4 and friends: one failed attempt per run, not one per file (each costs a create + unlink).
      if (['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS'].includes((error as NodeJS.ErrnoException).code ?? '')) noReflink = true;
    }
  }
  try {
    await copyBytes(source, dest);
    return 'copy';
  } catch (error) {
    throw storageError(error, `copy ${source} to`, dest);
  }
}

/** Set once copy-on-write cloning failed for lack of support (store and root sit on one file system). */
let noReflink = false;

/** The stored file has no link but the store's, or its only other link is `replaces`. */
function linkedNowhereElse(source: string, replaces: string | undefined): boolean {
  const info = lstatQuietly(source);
  if (!info) return true; // link() reports it
  if (info.nlink <= 1) return true;
  if (info.nlink > 2 || !replaces) return false;
  const other = lstatQuietly(replaces);
  return other !== undefined && other.ino === info.ino && other.dev === info.dev;
}

function lstatQuietly(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/**
 * A plain copy into a new file, in the kernel (copy_file_range: no bytes through user space, as
 * `cp` does). COPYFILE_EXCL matters: without it libuv truncates the destination first, and on ext4
 * a truncated file is flushed to disk on close (auto_da_alloc), which made copies 2.5x slower than cp.
 * The copy takes the stored file's read-only mode; a copy is the project's own, so it is made writable.
 */
async function copyBytes(source: string, dest: string): Promise<void> {
  await copyFile(source, dest, constants.COPYFILE_EXCL);
  await chmod(dest, 0o644);
}
