/**
 * The data model of the stand-in Hugging Face Hub (test/support/hub-server.ts): repos with
 * branches, tags and commits, each commit a full snapshot of files. Hashes are computed as git and
 * git-lfs compute them, so the tree listing carries the same `oid`s the real Hub would:
 * - a git file's `oid` is its git blob SHA-1 (`sha1("blob <len>\0" + bytes)`);
 * - an LFS file is stored in git as a pointer file, so its `oid` is the blob SHA-1 of the pointer,
 *   `lfs.oid` is the sha256 of the content and `lfs.pointerSize` the pointer's length;
 * - a directory's `oid` is its git tree SHA-1.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export type RepoType = 'model' | 'dataset';

export interface HubFileInput {
  /** Path in the repo, `/`-separated. */
  path: string;
  /** The bytes (a string is UTF-8). */
  content?: Buffer | string;
  /** Or a file on disk (LFS only): hashed by streaming and linked into the file host, never buffered. */
  fromFile?: string;
  /** Store through git-lfs (served by a 302 to the file host). Default: true with `fromFile`, else false. */
  lfs?: boolean;
}

export interface HubFile {
  path: string;
  /** Real size of the content. */
  size: number;
  /** git blob SHA-1 of what git stores (the content, or the LFS pointer). */
  oid: string;
  /** Present for LFS files. */
  lfs?: { oid: string; size: number; pointerSize: number };
  /** Git files: the bytes (small by definition). LFS files: undefined, the bytes live on the file host. */
  content?: Buffer;
  /** The commit that last changed this path. */
  lastCommit: string;
}

export interface HubCommit {
  id: string;
  title: string;
  date: string;
  parent?: string;
  files: Map<string, HubFile>;
}

export interface CommitOptions {
  /** Branch to commit on (created if missing) and move to the new commit. Default `main`. */
  branch?: string;
  files?: HubFileInput[];
  /** Paths removed from the parent snapshot. */
  delete?: string[];
  title?: string;
}

export interface HubRepo {
  id: string;
  type: RepoType;
  private: boolean;
  /** false, or the Hub's gating mode. */
  gated: false | 'auto' | 'manual';
  /** Tokens whose holders accepted the gated repo's terms (or may read the private repo). */
  granted: Set<string>;
  branches: Map<string, string>;
  tags: Map<string, string>;
  /** Other refs, such as `refs/pr/1`. */
  refs: Map<string, string>;
  commits: Map<string, HubCommit>;
  createdAt: string;
  /** Commit on top of a branch's head (or an empty repo); returns the new commit id. */
  commit(options: CommitOptions): Promise<string>;
  /** Create or move a tag. */
  tag(name: string, commit: string): void;
  /** Create or move a branch (e.g. force-push a branch back to an older commit). */
  setBranch(name: string, commit: string): void;
  /** Open pull request `refs/pr/N` pointing at `commit`. */
  pullRequest(n: number, commit: string): string;
  /** The commit a revision names (branch, tag, ref, full commit id, or HEAD for main), or undefined. */
  resolve(revision: string): HubCommit | undefined;
}

export const gitBlobSha1 = (bytes: Buffer): string =>
  createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');

export const lfsPointer = (sha256: string, size: number): Buffer =>
  Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`);

/** Where the file host keeps an LFS object, cdn-lfs style (`/repos/aa/bb/<sha256>`). */
export const lfsObjectPath = (sha256: string): string => `/repos/${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}`;

let commitCounter = 0;

export function createHubRepo(id: string, type: RepoType, options: { private?: boolean; gated?: false | 'auto' | 'manual' }, lfsRoot: string): HubRepo {
  const repo: HubRepo = {
    id,
    type,
    private: options.private ?? false,
    gated: options.gated ?? false,
    granted: new Set(),
    branches: new Map(),
    tags: new Map(),
    refs: new Map(),
    commits: new Map(),
    createdAt: new Date().toISOString(),
    async commit(opts) {
      const branch = opts.branch ?? 'main';
      const parentId = repo.branches.get(branch);
      const parent = parentId === undefined ? undefined : repo.commits.get(parentId);
      const files = new Map(parent?.files ?? []);
      for (const p of opts.delete ?? []) files.delete(p);
      const date = new Date(Date.UTC(2026, 0, 1) + ++commitCounter * 1000).toISOString();
      const title = opts.title ?? `commit ${commitCounter}`;
      const id = createHash('sha1').update(`${repo.id}\0${parentId ?? ''}\0${title}\0${commitCounter}`).digest('hex');
      for (const input of opts.files ?? []) {
        files.set(input.path, await storeFile(input, id, lfsRoot));
      }
      repo.commits.set(id, { id, title, date, ...(parentId !== undefined ? { parent: parentId } : {}), files });
      repo.branches.set(branch, id);
      return id;
    },
    tag(name, commit) {
      if (!repo.commits.has(commit)) throw new Error(`no commit ${commit} in ${repo.id}`);
      repo.tags.set(name, commit);
    },
    setBranch(name, commit) {
      if (!repo.commits.has(commit)) throw new Error(`no commit ${commit} in ${repo.id}`);
      repo.branches.set(name, commit);
    },
    pullRequest(n, commit) {
      if (!repo.commits.has(commit)) throw new Error(`no commit ${commit} in ${repo.id}`);
      const ref = `refs/pr/${n}`;
      repo.refs.set(ref, commit);
      return ref;
    },
    resolve(rev) {
      // `HEAD` is the default branch (@huggingface/hub's modelInfo asks for it by default).
      const revision = rev === 'HEAD' ? 'main' : rev;
      const id = repo.branches.get(revision) ?? repo.tags.get(revision) ?? repo.refs.get(revision) ?? revision;
      return repo.commits.get(id);
    },
  };
  return repo;
}

async function storeFile(input: HubFileInput, commit: string, lfsRoot: string): Promise<HubFile> {
  const lfs = input.lfs ?? input.fromFile !== undefined;
  if (input.fromFile !== undefined) {
    if (!lfs) throw new Error(`${input.path}: fromFile is for LFS files`);
    const { sha256, size } = await hashFile(input.fromFile);
    const target = join(lfsRoot, lfsObjectPath(sha256));
    await mkdir(dirname(target), { recursive: true });
    await link(input.fromFile, target).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code === 'EEXIST') return;
      await copyFile(input.fromFile as string, target);
    });
    return lfsFile(input.path, sha256, size, commit);
  }
  const bytes = typeof input.content === 'string' ? Buffer.from(input.content) : (input.content ?? Buffer.alloc(0));
  if (!lfs) return { path: input.path, size: bytes.length, oid: gitBlobSha1(bytes), content: bytes, lastCommit: commit };
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const target = join(lfsRoot, lfsObjectPath(sha256));
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, bytes);
  return lfsFile(input.path, sha256, bytes.length, commit);
}

function lfsFile(path: string, sha256: string, size: number, commit: string): HubFile {
  const pointer = lfsPointer(sha256, size);
  return { path, size, oid: gitBlobSha1(pointer), lfs: { oid: sha256, size, pointerSize: pointer.length }, lastCommit: commit };
}

async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

export interface TreeEntry {
  type: 'file' | 'directory';
  oid: string;
  size: number;
  path: string;
  lfs?: { oid: string; size: number; pointerSize: number };
  xetHash?: string;
  lastCommit?: { id: string; title: string; date: string };
}

/**
 * The entries under `dir` ('' = root) of a commit, directories first then files at each level, as
 * `git ls-tree` orders them; recursive lists every descendant (folders included, as the Hub does).
 */
export function listTree(commit: HubCommit, dir: string, recursive: boolean): TreeEntry[] | undefined {
  const prefix = dir === '' ? '' : `${dir}/`;
  const dirs = new Set<string>();
  const files: HubFile[] = [];
  for (const f of commit.files.values()) {
    if (!f.path.startsWith(prefix)) continue;
    const rest = f.path.slice(prefix.length).split('/');
    for (let i = 1; i < rest.length; i++) {
      if (!recursive && i > 1) break;
      dirs.add(prefix + rest.slice(0, i).join('/'));
    }
    if (recursive || rest.length === 1) files.push(f);
  }
  if (dir !== '' && dirs.size === 0 && files.length === 0) return undefined;
  const entries: TreeEntry[] = [
    ...[...dirs].map((d) => ({ type: 'directory' as const, oid: gitTreeSha1(commit, d), size: 0, path: d })),
    ...files.map(fileEntry),
  ];
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export function fileEntry(f: HubFile): TreeEntry {
  return { type: 'file', oid: f.oid, size: f.size, path: f.path, ...(f.lfs ? { lfs: { ...f.lfs } } : {}) };
}

/** A path's entry (file or folder) at a commit, as paths-info returns it, or undefined. */
export function pathEntry(commit: HubCommit, path: string): TreeEntry | undefined {
  const f = commit.files.get(path);
  if (f) return fileEntry(f);
  for (const p of commit.files.keys()) {
    if (p.startsWith(`${path}/`)) return { type: 'directory', oid: gitTreeSha1(commit, path), size: 0, path };
  }
  return undefined;
}

/** git's tree object hash: entries `<mode> <name>\0<20-byte sha>` sorted by name (folders as `name/`). */
export function gitTreeSha1(commit: HubCommit, dir: string): string {
  const prefix = dir === '' ? '' : `${dir}/`;
  const children = new Map<string, { mode: string; sha: string }>();
  for (const f of commit.files.values()) {
    if (!f.path.startsWith(prefix)) continue;
    const [name = '', ...rest] = f.path.slice(prefix.length).split('/');
    if (rest.length === 0) children.set(name, { mode: '100644', sha: f.oid });
    else if (!children.has(`${name}/`)) children.set(`${name}/`, { mode: '40000', sha: gitTreeSha1(commit, prefix + name) });
  }
  const parts = [...children.keys()].sort().map((key) => {
    const { mode, sha } = children.get(key) as { mode: string; sha: string };
    return Buffer.concat([Buffer.from(`${mode} ${key.replace(/\/$/, '')}\0`), Buffer.from(sha, 'hex')]);
  });
  const body = Buffer.concat(parts);
  return createHash('sha1').update(`tree ${body.length}\0`).update(body).digest('hex');
}
