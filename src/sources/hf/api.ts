/**
 * The two Hub API calls resolving needs, called directly (not through @huggingface/hub, which reads
 * neither HF_ENDPOINT nor HF_TOKEN, never retries and brings ~12 MB of dependencies):
 * - `GET /api/{type}s/{repo}/revision/{rev}` → `sha`, the commit a branch, tag or ref names now;
 * - `GET /api/{type}s/{repo}/tree/{commit}?recursive=true`, paginated by `Link: <…>; rel="next"`:
 *   every file with its size, git blob `oid`, and for LFS files `lfs.oid` (the sha256).
 * Answers are shared by the entries of one run (two entries of one repo ask once).
 */
import type { SourceContext } from '../adapter.js';
import { ModelsError } from '../../util/errors.js';
import { hubGet, nextLink, parseJson } from './hub-http.js';
import { type RepoRef, repoLabel, revisionUrl, treeUrl } from './repo.js';
import { hubSettings } from './settings.js';

export interface RepoFile {
  path: string;
  size: number;
  /** git blob SHA-1 of what git stores (the content, or the LFS pointer). */
  oid: string;
  /** LFS files: the sha256 of the content. */
  lfs?: string;
}

const MAX_INFO_BYTES = 64 * 1024 * 1024;
const MAX_PAGE_BYTES = 64 * 1024 * 1024;
const MAX_PAGES = 10_000;
const COMMIT = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;

function memo<T>(ctx: SourceContext, key: string, make: () => Promise<T>): Promise<T> {
  let pending = ctx.memo.get(key) as Promise<T> | undefined;
  if (!pending) {
    pending = make();
    ctx.memo.set(key, pending);
  }
  return pending;
}

/** The commit `revision` names now. */
export function revisionCommit(ctx: SourceContext, ref: RepoRef, revision: string): Promise<string> {
  return memo(ctx, `hf:revision:${ref.type}:${ref.repo}@${revision}`, async () => {
    const settings = await hubSettings(ctx.session);
    const url = revisionUrl(settings, ref, revision);
    const what = `${repoLabel(ref)}@${revision}`;
    const answer = await hubGet(ctx.session, settings, { ref, revision, url }, what, MAX_INFO_BYTES, ctx.signal);
    const sha = (parseJson(answer, what) as { sha?: unknown } | null)?.sha;
    if (typeof sha !== 'string' || !COMMIT.test(sha)) {
      throw new ModelsError('E_HTTP', `${what}: ${answer.url} names no commit (no 40-hex "sha")`, { hint: 'check HF_ENDPOINT: it does not answer like the Hub API' });
    }
    return sha;
  });
}

/** Every file of the repo at `commit`, folders left out, sorted by path. */
export function listFiles(ctx: SourceContext, ref: RepoRef, commit: string): Promise<RepoFile[]> {
  return memo(ctx, `hf:tree:${ref.type}:${ref.repo}@${commit}`, async () => {
    const settings = await hubSettings(ctx.session);
    const what = `${repoLabel(ref)}@${commit.slice(0, 12)}: file list`;
    const files: RepoFile[] = [];
    let url: string | undefined = treeUrl(settings, ref, commit);
    for (let page = 0; url; page++) {
      if (page >= MAX_PAGES) throw new ModelsError('E_HTTP', `${what}: more than ${MAX_PAGES} pages`, { hint: 'check HF_ENDPOINT: it does not answer like the Hub API' });
      const answer = await hubGet(ctx.session, settings, { ref, revision: commit, url }, what, MAX_PAGE_BYTES, ctx.signal);
      const entries = parseJson(answer, what);
      if (!Array.isArray(entries)) throw new ModelsError('E_HTTP', `${what}: ${answer.url} did not answer a list`, { hint: 'check HF_ENDPOINT: it does not answer like the Hub API' });
      for (const entry of entries) {
        const file = repoFile(entry, what);
        if (file) files.push(file);
      }
      url = nextLink(answer.headers, answer.url);
    }
    return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  });
}

function repoFile(entry: unknown, what: string): RepoFile | undefined {
  const e = entry as { type?: unknown; path?: unknown; size?: unknown; oid?: unknown; lfs?: { oid?: unknown; size?: unknown } | null } | null;
  if (e?.type !== 'file') return undefined;
  const bad = (why: string) => new ModelsError('E_HTTP', `${what}: an entry ${why}`, { hint: 'check HF_ENDPOINT: it does not answer like the Hub API' });
  if (typeof e.path !== 'string' || e.path === '') throw bad('has no path');
  if (typeof e.size !== 'number' || !Number.isSafeInteger(e.size) || e.size < 0) throw bad(`(${e.path}) has no valid size`);
  if (typeof e.oid !== 'string' || !/^[0-9a-f]{40}$/.test(e.oid)) throw bad(`(${e.path}) has no git oid`);
  if (e.lfs) {
    if (typeof e.lfs.oid !== 'string' || !SHA256.test(e.lfs.oid)) throw bad(`(${e.path}) has an LFS oid that is not a sha256`);
    const size = typeof e.lfs.size === 'number' ? e.lfs.size : e.size;
    return { path: e.path, size, oid: e.oid, lfs: e.lfs.oid };
  }
  return { path: e.path, size: e.size, oid: e.oid };
}
