/**
 * A stand-in Hugging Face Hub on 127.0.0.1, written from the API as the official clients use it
 * (huggingface_hub: hf_api.py, file_download.py, utils/_http.py; @huggingface/hub: src/lib/*.ts):
 *
 * - `GET /api/{models|datasets}/{repo}/revision/{rev}` (or `/api/models/{repo}` for the default
 *   branch) -> `{ _id, id, sha, siblings: [{rfilename}], … }`
 *   (`?blobs=true` adds `size`, `blobId`, `lfs: {sha256, size, pointerSize}` to each sibling);
 * - `GET /api/…/{repo}/tree/{rev}[/{path}]?recursive=true&expand=…`, paginated with an absolute
 *   `Link: <…&cursor=…>; rel="next"` (1000 entries a page, 50 with expand=true, as the Hub does);
 * - `POST /api/…/{repo}/paths-info/{rev}` with JSON (`@huggingface/hub`) or a form body (huggingface_hub);
 * - `GET /api/…/{repo}/refs` -> `{ branches, tags, converts, pullRequests? }`;
 * - `GET /api/whoami-v2` -> `{ type, name, auth }` for a valid token, else 401;
 * - `GET|HEAD /{repo}/resolve/{rev}/{path}` and `/datasets/{repo}/resolve/…` (and `/raw/`):
 *   git files are served here (Range, If-Range, ETag = `"<git blob sha1>"`); LFS files get a 302 to
 *   the file host (a second origin, like cdn-lfs) with `ETag`/`X-Linked-Etag` = `"<sha256>"` and
 *   `X-Linked-Size`. Every resolve answer carries `X-Repo-Commit`.
 * A revision is URL-encoded (`refs%2Fpr%2F1`) by huggingface_hub; `@huggingface/hub`'s listFiles
 * sends it raw, so both are accepted.
 *
 * Errors carry `X-Error-Code` and `X-Error-Message` like the Hub: RepoNotFound (401 without a token,
 * 404 with one: the Hub does not say whether a private repo exists), RevisionNotFound and
 * EntryNotFound (404), GatedRepo (401 without a token, 403 with a token that has not accepted the
 * terms; gated repos' metadata and file list stay public, only files are gated), 401 "Invalid
 * credentials in Authorization header" for an unknown token, and 429 with `Retry-After`,
 * `RateLimit` and `RateLimit-Policy` on demand.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHubRepo, type HubCommit, type HubFile, type HubRepo, lfsObjectPath, lfsPointer, listTree, pathEntry, type RepoType, type TreeEntry } from './hub-repos.js';
import { writeHfCache } from './hf-cache.js';
import { type RegistryServer, type ServerOptions, startRegistryServer } from './registry-server.js';

export type { HubRepo, HubFileInput, CommitOptions } from './hub-repos.js';
export { gitBlobSha1, lfsPointer } from './hub-repos.js';

export interface HubRequest {
  method: string;
  /** Raw path without the query string. */
  path: string;
  /** The raw query string without `?` ('' when none). */
  query: string;
  headers: Record<string, string | string[] | undefined>;
  authorization?: string;
  status: number;
}

export interface RateLimitRule {
  /** How many matching requests get a 429 (default 1). */
  times?: number;
  /** Seconds in Retry-After and in `RateLimit: "<resource>";r=0;t=<s>` (default 1). */
  resetSeconds?: number;
  /** The Hub's rate-limit buckets: `api` (/api/ calls) or `resolvers` (resolve/raw). Default `api`. */
  resource?: 'api' | 'resolvers';
  /** Which requests it applies to (default: those of the resource's bucket). */
  match?: (req: HubRequest) => boolean;
}

export interface HubServerOptions {
  /** Options for the file host (a test/support/registry-server.ts): faults, bytesPerSecond, ranges. */
  fileHost?: Omit<ServerOptions, 'root'>;
  /**
   * Serve LFS objects from a static server of the caller's instead (the benchmark's nginx, standing in
   * for the Hub's CDN): objects are written under `root`, and resolve redirects to `url`.
   */
  lfsHost?: { url: string; root: string };
  /** Entries per tree page (default 1000, or 50 with expand=true, as the Hub). */
  treePageSize?: number;
  /**
   * Act like a Xet-backed repo: LFS entries also carry `xetHash` (a Merkle hash, NOT the sha256)
   * and resolve adds `X-Xet-Hash` and a `Link: <…>; rel="xet-auth"`. A plain GET of the redirect
   * still gets the bytes, as on the Hub.
   */
  xet?: boolean;
  /** A status to answer instead (e.g. 500, 503) for a request, before anything else. */
  fault?: (req: HubRequest, attempt: number) => { status: number; headers?: Record<string, string>; body?: string } | undefined;
}

export interface HubServer {
  /** The HF_ENDPOINT: http://127.0.0.1:PORT, no trailing slash. */
  url: string;
  /** The second origin serving LFS objects; its `requests` record `authorization`. */
  fileHost: RegistryServer;
  /** Requests to the Hub origin, in arrival order (`status` is 0 until answered). */
  requests: HubRequest[];
  /** Recorded Hub requests whose path starts with the prefix (all when omitted). */
  count(pathPrefix?: string): number;
  /** Create a repo (`org/name`); a dataset with `type: 'dataset'`. */
  createRepo(id: string, options?: { type?: RepoType; private?: boolean; gated?: false | 'auto' | 'manual' }): HubRepo;
  repo(id: string, type?: RepoType): HubRepo;
  /** Rename a repo: requests under the old id get a 307 with a relative Location to the new one. */
  renameRepo(from: string, to: string, type?: RepoType): void;
  /** Make a token valid (any other Bearer token gets 401 "Invalid credentials"). */
  addToken(token: string): void;
  /** Gate a repo; `accepted` tokens (made valid) have accepted its terms. */
  gate(id: string, accepted: string[], options?: { type?: RepoType; mode?: 'auto' | 'manual' }): void;
  /** Answer the next matching requests with 429. */
  rateLimit(rule?: RateLimitRule): void;
  /**
   * Put a revision's files (all, or `paths`) into a local Hugging Face cache folder, as `hf download`
   * would have (test/support/hf-cache.ts); returns the repo's cache folder.
   */
  writeLocalCache(cacheDir: string, id: string, revision: string, options?: { type?: RepoType; paths?: string[] }): Promise<string>;
  /** Resolves when the file host has logged every request so far (it logs on completion). */
  settled(): Promise<void>;
  /** Clear both request logs and pending rate limits. */
  reset(): void;
  close(): Promise<void>;
}

const JSON_TYPE = 'application/json; charset=utf-8';

export async function startHubServer(options: HubServerOptions = {}): Promise<HubServer> {
  const lfsRoot = options.lfsHost?.root ?? (await mkdtemp(join(tmpdir(), 'hub-lfs-')));
  const fileHost = await startRegistryServer({ ...options.fileHost, root: lfsRoot });
  const lfsUrl = options.lfsHost?.url ?? fileHost.url;
  const repos = new Map<string, HubRepo>();
  const tokens = new Set<string>();
  const renamed = new Map<string, string>();
  const rateLimits: Array<Required<Omit<RateLimitRule, 'match'>> & { match: (r: HubRequest) => boolean }> = [];
  const attempts = new Map<string, number>();
  const requests: HubRequest[] = [];
  const sockets = new Set<Socket>();
  let url = '';

  const key = (type: RepoType, id: string): string => `${type}s/${id}`;
  const getRepo = (id: string, type: RepoType = 'model'): HubRepo => {
    const r = repos.get(key(type, id));
    if (!r) throw new Error(`no ${type} repo ${id}`);
    return r;
  };

  const server = createServer((req, res) => {
    const [path = '/', query = ''] = (req.url ?? '/').split(/\?(.*)/s);
    const record: HubRequest = { method: req.method ?? 'GET', path, query, headers: { ...req.headers }, status: 0 };
    if (req.headers.authorization !== undefined) record.authorization = req.headers.authorization;
    // Logged on arrival, so a count taken right after a response never misses it.
    requests.push(record);
    res.on('close', () => {
      record.status = res.headersSent ? res.statusCode : 0;
    });
    handle(req, res, record).catch((e: unknown) => {
      if (!res.headersSent) sendError(res, record, 500, undefined, `stand-in hub error: ${String(e)}`);
      else res.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse, record: HubRequest): Promise<void> {
    const attempt = (attempts.get(record.path) ?? 0) + 1;
    attempts.set(record.path, attempt);
    const fault = options.fault?.(record, attempt);
    if (fault) {
      res.writeHead(fault.status, { 'Content-Type': 'text/plain; charset=utf-8', ...fault.headers });
      res.end(record.method === 'HEAD' ? undefined : (fault.body ?? `${fault.status}\n`));
      return;
    }
    const limit = rateLimits.find((r) => r.times > 0 && r.match(record));
    if (limit) {
      limit.times--;
      return sendError(res, record, 429, undefined, 'You have been rate-limited; retry later.', {
        'Retry-After': String(limit.resetSeconds),
        RateLimit: `"${limit.resource}";r=0;t=${limit.resetSeconds}`,
        'RateLimit-Policy': `"fixed window";"${limit.resource}";q=500;w=300`,
      });
    }
    if (record.path === '/api/whoami-v2') {
      // huggingface_hub's whoami(): who the token belongs to; 401 without a valid one.
      const who = checkToken(record.authorization);
      if (who === undefined || who === 'invalid') return sendError(res, record, 401, undefined, 'Invalid credentials in Authorization header');
      return sendJson(res, record, 200, { type: 'user', name: 'stand-in-user', auth: { type: 'access_token', accessToken: { displayName: 'test', role: 'read' } } });
    }
    const route = parseRoute(record.path);
    if (!route) return sendError(res, record, 404, undefined, 'Not Found');
    const movedTo = renamed.get(key(route.type, route.repo));
    if (movedTo !== undefined) {
      // A renamed repo answers a relative redirect, which huggingface_hub follows (and only those).
      const location = record.path.replace(`/${route.repo}/`, `/${movedTo}/`) + (record.query ? `?${record.query}` : '');
      res.writeHead(307, { Location: location, 'Content-Length': '0' });
      return void res.end();
    }
    const repo = repos.get(key(route.type, route.repo));
    const auth = checkToken(record.authorization);
    if (auth === 'invalid') return sendError(res, record, 401, undefined, 'Invalid credentials in Authorization header');
    const label = `${route.type === 'dataset' ? 'dataset' : 'model'} ${route.repo}`;
    if (!repo || (repo.private && !(auth && repo.granted.has(auth)))) {
      return sendError(res, record, auth ? 404 : 401, 'RepoNotFound', 'Repository not found');
    }
    if (route.kind === 'refs') return sendJson(res, record, 200, refsOf(repo));
    const split = splitRevision(repo, route.rest, route.kind !== 'revision');
    if (!split) return sendError(res, record, 404, 'RevisionNotFound', `Invalid rev id: ${decodeSafe(route.rest.split('/')[0] ?? '')}`);
    const { commit, revision, path } = split;
    switch (route.kind) {
      case 'revision':
        return sendJson(res, record, 200, repoInfo(repo, commit, new URLSearchParams(record.query)));
      case 'tree':
        return sendTree(res, record, repo, commit, revision, path);
      case 'paths-info':
        return sendPathsInfo(req, res, record, commit);
      default: {
        if (repo.gated && !(auth && repo.granted.has(auth))) {
          return sendError(res, record, auth ? 403 : 401, 'GatedRepo', auth
            ? `Access to ${label} is restricted and you are not in the authorized list. Visit ${url}/${route.repo} to ask for access.`
            : `Access to ${label} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
        }
        const file = commit.files.get(path);
        if (!file) return sendError(res, record, 404, 'EntryNotFound', `${path} does not exist on "${revision}"`, { 'X-Repo-Commit': commit.id });
        return route.kind === 'raw' ? sendGitFile(req, res, record, commit, file, true) : sendResolve(req, res, record, commit, file);
      }
    }
  }

  function checkToken(authorization: string | undefined): string | undefined | 'invalid' {
    if (authorization === undefined) return undefined;
    const m = /^Bearer (.+)$/.exec(authorization);
    return m?.[1] !== undefined && tokens.has(m[1]) ? m[1] : 'invalid';
  }

  function sendTree(res: ServerResponse, record: HubRequest, repo: HubRepo, commit: HubCommit, revision: string, path: string): void {
    const q = new URLSearchParams(record.query);
    const recursive = isTrue(q.get('recursive'));
    const expand = isTrue(q.get('expand'));
    const entries = listTree(commit, path, recursive);
    if (!entries) return sendError(res, record, 404, 'EntryNotFound', `${path} does not exist on "${revision}"`);
    const pageSize = options.treePageSize ?? (expand ? 50 : 1000);
    const cursor = q.get('cursor');
    const start = cursor === null ? 0 : Number(Buffer.from(cursor, 'base64url').toString());
    const page = entries.slice(start, start + pageSize).map((e) => withXet(expand ? withLastCommit(repo, commit, e) : e));
    const headers: Record<string, string> = {};
    if (start + pageSize < entries.length) {
      q.set('cursor', Buffer.from(String(start + pageSize)).toString('base64url'));
      headers.Link = `<${url}${record.path}?${q.toString()}>; rel="next"`;
    }
    sendJson(res, record, 200, page, headers);
  }

  async function sendPathsInfo(req: IncomingMessage, res: ServerResponse, record: HubRequest, commit: HubCommit): Promise<void> {
    if (record.method !== 'POST') return sendError(res, record, 405, undefined, 'Method Not Allowed');
    const body = await readBody(req);
    let paths: string[] = [];
    if (String(req.headers['content-type']).startsWith('application/json')) {
      const parsed = JSON.parse(body.toString() || '{}') as { paths?: unknown };
      paths = Array.isArray(parsed.paths) ? parsed.paths.map(String) : [];
    } else {
      paths = new URLSearchParams(body.toString()).getAll('paths');
    }
    // Paths that do not exist are left out, as on the Hub.
    sendJson(res, record, 200, paths.map((p) => pathEntry(commit, p)).filter((e) => e !== undefined).map(withXet));
  }

  function sendResolve(req: IncomingMessage, res: ServerResponse, record: HubRequest, commit: HubCommit, file: HubFile): void {
    if (!file.lfs) return sendGitFile(req, res, record, commit, file, false);
    const location = `${lfsUrl}${lfsObjectPath(file.lfs.oid)}`;
    const body = `Found. Redirecting to ${location}`;
    res.writeHead(302, {
      Location: location,
      'X-Repo-Commit': commit.id,
      ETag: `"${file.lfs.oid}"`,
      'X-Linked-Etag': `"${file.lfs.oid}"`,
      'X-Linked-Size': String(file.lfs.size),
      ...(options.xet ? { 'X-Xet-Hash': xetHashOf(file.lfs.oid), Link: `<${url}/api/${repoOf(record)}/xet-read-token/${commit.id}>; rel="xet-auth"` } : {}),
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(body)),
    });
    res.end(record.method === 'HEAD' ? undefined : body);
  }

  function withXet(e: TreeEntry): TreeEntry {
    return options.xet && e.lfs ? { ...e, xetHash: xetHashOf(e.lfs.oid) } : e;
  }

  function sendGitFile(req: IncomingMessage, res: ServerResponse, record: HubRequest, commit: HubCommit, file: HubFile, raw: boolean): void {
    // /raw/ gives what git stores: the pointer for an LFS file.
    const bytes = file.content ?? lfsPointer(file.lfs?.oid ?? '', file.size);
    const etag = `"${file.oid}"`;
    const headers: Record<string, string> = {
      'X-Repo-Commit': commit.id,
      ETag: etag,
      'Accept-Ranges': 'bytes',
      'Content-Type': 'text/plain; charset=utf-8',
    };
    if (raw && file.lfs) headers['X-Linked-Size'] = String(file.lfs.size);
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      return void res.end();
    }
    let [start, end, status] = [0, bytes.length - 1, 200];
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (range && (ifRange === undefined || ifRange === etag)) {
      const [, a = '', b = ''] = range;
      start = a === '' ? Math.max(0, bytes.length - Number(b)) : Number(a);
      end = a !== '' && b !== '' ? Math.min(Number(b), bytes.length - 1) : bytes.length - 1;
      if (start >= bytes.length) {
        res.writeHead(416, { ...headers, 'Content-Range': `bytes */${bytes.length}` });
        return void res.end();
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${bytes.length}`;
    }
    const body = bytes.subarray(start, end + 1);
    res.writeHead(status, { ...headers, 'Content-Length': String(body.length) });
    res.end(record.method === 'HEAD' ? undefined : body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    fileHost,
    requests,
    count: (prefix) => (prefix === undefined ? requests.length : requests.filter((r) => r.path.startsWith(prefix)).length),
    createRepo(id, opts = {}) {
      if (!/^[\w.-]+\/[\w.-]+$/.test(id)) throw new Error(`repo id must be org/name: ${id}`);
      const type = opts.type ?? 'model';
      const repo = createHubRepo(id, type, opts, lfsRoot);
      repos.set(key(type, id), repo);
      return repo;
    },
    repo: getRepo,
    renameRepo(from, to, type = 'model') {
      const repo = getRepo(from, type);
      repos.delete(key(type, from));
      repo.id = to;
      repos.set(key(type, to), repo);
      renamed.set(key(type, from), to);
    },
    addToken: (t) => void tokens.add(t),
    gate(id, accepted, opts = {}) {
      const repo = getRepo(id, opts.type);
      repo.gated = opts.mode ?? 'auto';
      for (const t of accepted) {
        tokens.add(t);
        repo.granted.add(t);
      }
    },
    rateLimit(rule = {}) {
      const resource = rule.resource ?? 'api';
      const match = rule.match ?? ((r: HubRequest) => (resource === 'api') === r.path.startsWith('/api/'));
      rateLimits.push({ times: rule.times ?? 1, resetSeconds: rule.resetSeconds ?? 1, resource, match });
    },
    async writeLocalCache(cacheDir, id, revision, opts = {}) {
      const repo = getRepo(id, opts.type);
      const commit = repo.resolve(revision);
      if (!commit) throw new Error(`no revision ${revision} in ${id}`);
      const files = [...commit.files.values()]
        .filter((f) => opts.paths === undefined || opts.paths.includes(f.path))
        .map((f) => ({ path: f.path, etag: f.lfs?.oid ?? f.oid, source: f.content ?? join(lfsRoot, lfsObjectPath(f.lfs?.oid ?? '')) }));
      const refs = revision === commit.id ? [] : [revision];
      return writeHfCache(cacheDir, repo, commit.id, files, refs);
    },
    settled: () => fileHost.settled(),
    reset() {
      requests.length = 0;
      rateLimits.length = 0;
      attempts.clear();
      fileHost.reset();
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await fileHost.close();
      if (!options.lfsHost) await rm(lfsRoot, { recursive: true, force: true });
    },
  };
}

type RouteKind = 'revision' | 'tree' | 'paths-info' | 'refs' | 'resolve' | 'raw';
interface Route {
  kind: RouteKind;
  type: RepoType;
  repo: string;
  /** Still-encoded rest of the path after the route keyword: `<rev>[/<path>]`. */
  rest: string;
}

function parseRoute(path: string): Route | undefined {
  // `GET /api/models/{repo}` (huggingface_hub's model_info without a revision) is the default branch.
  const info = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)$/.exec(path);
  if (info) return { kind: 'revision', type: info[1] === 'datasets' ? 'dataset' : 'model', repo: info[2] ?? '', rest: 'HEAD' };
  const api = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/(revision|tree|paths-info|refs)(?:\/(.*))?$/.exec(path);
  if (api) {
    const [, types = '', repo = '', kind = '', rest = ''] = api;
    return { kind: kind as RouteKind, type: types === 'datasets' ? 'dataset' : 'model', repo, rest };
  }
  const file = /^\/(datasets\/)?([^/]+\/[^/]+)\/(resolve|raw)\/(.+)$/.exec(path);
  if (file) {
    const [, ds, repo = '', kind = '', rest = ''] = file;
    if (repo.startsWith('api/')) return undefined;
    return { kind: kind as RouteKind, type: ds ? 'dataset' : 'model', repo, rest };
  }
  return undefined;
}

/**
 * Split `<rev>[/<path>]`: the revision is one encoded segment (`refs%2Fpr%2F1`), or, sent unencoded,
 * the longest run of leading segments that names a ref (`refs/pr/1/…`).
 */
function splitRevision(repo: HubRepo, rest: string, hasPath: boolean): { commit: HubCommit; revision: string; path: string } | undefined {
  const decoded = rest.split('/').map(decodeSafe);
  for (let n = decoded.length; n >= (hasPath ? 1 : decoded.length); n--) {
    const revision = decoded.slice(0, n).join('/');
    const commit = repo.resolve(revision);
    if (commit) return { commit, revision, path: decoded.slice(n).join('/') };
  }
  return undefined;
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function repoInfo(repo: HubRepo, commit: HubCommit, q: URLSearchParams): Record<string, unknown> {
  const blobs = isTrue(q.get('blobs'));
  const siblings = [...commit.files.values()]
    .sort((a, b) => (a.path < b.path ? -1 : 1))
    .map((f) => (blobs
      ? { rfilename: f.path, size: f.size, blobId: f.oid, ...(f.lfs ? { lfs: { sha256: f.lfs.oid, size: f.lfs.size, pointerSize: f.lfs.pointerSize } } : {}) }
      : { rfilename: f.path }));
  return {
    _id: repo.id.replace(/\W/g, '').padEnd(24, '0').slice(0, 24),
    id: repo.id,
    author: repo.id.split('/')[0],
    ...(repo.type === 'model' ? { modelId: repo.id } : {}),
    sha: commit.id,
    lastModified: commit.date,
    createdAt: repo.createdAt,
    private: repo.private,
    gated: repo.gated,
    disabled: false,
    downloads: 0,
    likes: 0,
    tags: [],
    siblings,
  };
}

function refsOf(repo: HubRepo): Record<string, unknown> {
  const list = (m: Map<string, string>, kind: 'heads' | 'tags') =>
    [...m].map(([name, targetCommit]) => ({ name, ref: `refs/${kind}/${name}`, targetCommit }));
  return { branches: list(repo.branches, 'heads'), tags: list(repo.tags, 'tags'), converts: [] };
}

function withLastCommit(repo: HubRepo, commit: HubCommit, e: TreeEntry): TreeEntry {
  const id = e.type === 'file' ? (commit.files.get(e.path)?.lastCommit ?? commit.id) : commit.id;
  const c = repo.commits.get(id) ?? commit;
  return { ...e, lastCommit: { id: c.id, title: c.title, date: c.date } };
}

const isTrue = (v: string | null): boolean => v === 'true' || v === '1' || v === 'True';

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1 << 20) req.destroy(new Error('body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, record: HubRequest, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'Content-Type': JSON_TYPE, 'Content-Length': String(body.length), 'X-Request-Id': requestId(), ...headers });
  res.end(record.method === 'HEAD' ? undefined : body);
}

/** The Hub's error shape: X-Error-Code / X-Error-Message headers, `{"error": …}` on /api/, text elsewhere. */
function sendError(res: ServerResponse, record: HubRequest, status: number, code: string | undefined, message: string, headers: Record<string, string> = {}): void {
  const h: Record<string, string> = { 'X-Error-Message': message, ...headers };
  if (code !== undefined) h['X-Error-Code'] = code;
  if (record.path.startsWith('/api/')) return sendJson(res, record, status, { error: message }, h);
  const body = Buffer.from(message);
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(body.length), 'X-Request-Id': requestId(), ...h });
  res.end(record.method === 'HEAD' ? undefined : body);
}

/** A stand-in Xet hash: 64 hex like the real one, and like it different from the sha256. */
const xetHashOf = (sha256: string): string => createHash('sha256').update(`xet\0${sha256}`).digest('hex');

/** `models/org/name` (or `datasets/…`) of a request path, for the xet-auth link. */
const repoOf = (record: HubRequest): string => {
  const route = parseRoute(record.path);
  return route ? `${route.type}s/${route.repo}` : '';
};

const requestId = (): string => `Root=1-${randomBytes(12).toString('hex')}`;
