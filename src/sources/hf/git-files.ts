/**
 * Small git (non-LFS) files have no sha256 on the Hub, only a git blob SHA-1: `models lock` gets
 * their bytes once, checks them against that SHA-1, pins their sha256 and keeps them in the store,
 * so the install that follows fetches nothing more. The bytes come from the store (a file the
 * previous lock pinned, still the same blob), the local Hugging Face cache, or the Hub.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LockedFile } from '../../project/lockfile.js';
import type { Store } from '../../store/store.js';
import { ModelsError, storageError } from '../../util/errors.js';
import { EMPTY_SHA256, sha256 } from '../../util/hash.js';
import type { SourceContext } from '../adapter.js';
import type { RepoFile } from './api.js';
import { hubGet } from './hub-http.js';
import { cachedGitFile, gitBlobSha1 } from './local-cache.js';
import { type RepoRef, repoLabel, resolveUrl } from './repo.js';
import { hubSettings } from './settings.js';

/** The Hub keeps files over 10 MB in LFS; a "git file" far bigger is not one. */
const MAX_GIT_FILE = 64 * 1024 * 1024;

/** sha256 of every git file in `files`, by path. */
export async function pinGitFiles(ctx: SourceContext, ref: RepoRef, commit: string, files: RepoFile[], previous: LockedFile[] = []): Promise<Map<string, string>> {
  const { default: pLimit } = await import('p-limit');
  const limit = pLimit(Math.min(8, ctx.session.concurrency));
  const before = new Map(previous.map((f) => [f.path, f]));
  const pinned = new Map<string, string>();
  const git = files.filter((f) => !f.lfs);
  if (git.some((f) => f.size > 0)) await ctx.session.store.init();
  await Promise.all(
    git.map((file) =>
      limit(async () => {
        pinned.set(file.path, await pinGitFile(ctx, ref, commit, file, before.get(file.path)));
      }),
    ),
  );
  return pinned;
}

async function pinGitFile(ctx: SourceContext, ref: RepoRef, commit: string, file: RepoFile, previous: LockedFile | undefined): Promise<string> {
  if (file.size === 0) return EMPTY_SHA256;
  const { store } = ctx.session;
  // Unchanged since the last lock: the stored copy is the same blob.
  if (previous?.sha256 && previous.size === file.size) {
    const bytes = await readFile(store.objectPath(previous.sha256)).catch(() => undefined);
    if (bytes && gitBlobSha1(bytes) === file.oid && sha256(bytes) === previous.sha256) return previous.sha256;
  }
  const settings = await hubSettings(ctx.session);
  const bytes = (await cachedGitFile(settings, ref, commit, file)) ?? (await download(ctx, ref, commit, file));
  const sha = sha256(bytes);
  await keep(store, bytes, sha);
  return sha;
}

async function download(ctx: SourceContext, ref: RepoRef, commit: string, file: RepoFile): Promise<Buffer> {
  const label = repoLabel(ref);
  if (file.size > MAX_GIT_FILE) {
    throw new ModelsError('E_HTTP', `${label}: ${file.path} is a git file of ${file.size} bytes, more than the ${MAX_GIT_FILE} a Hub git file can be`, { hint: 'check HF_ENDPOINT: it does not answer like the Hub' });
  }
  const settings = await hubSettings(ctx.session);
  const url = resolveUrl(settings, ref, commit, file.path);
  const answer = await hubGet(ctx.session, settings, { ref, revision: commit, path: file.path, url }, `${label}: ${file.path}`, Math.min(MAX_GIT_FILE, file.size * 2 + 1024), ctx.signal);
  const actual = gitBlobSha1(answer.body);
  if (answer.body.length !== file.size || actual !== file.oid) {
    throw new ModelsError('E_INTEGRITY', `${label}: ${file.path} at ${commit.slice(0, 12)} is ${answer.body.length} bytes with git blob ${actual}; the Hub's file list says ${file.size} bytes, blob ${file.oid}`, {
      hint: 'run `models lock` again; if it repeats, the Hub or a proxy serves other bytes than the repo holds',
    });
  }
  return answer.body;
}

/** Put verified bytes into the store (a copy: never a link into someone else's cache). */
async function keep(store: Store, bytes: Buffer, sha: string): Promise<void> {
  if (await store.hasObject(sha, bytes.length)) return;
  const dir = await store.preparePartialDir(sha256(`hf-git\n${sha}\n${randomBytes(8).toString('hex')}`));
  try {
    const temp = join(dir, 'object');
    await writeFile(temp, bytes).catch((error: unknown) => {
      throw storageError(error, 'write', temp);
    });
    await store.putObject(temp, sha);
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
