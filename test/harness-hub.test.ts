/** The stand-in Hugging Face Hub itself, exercised with plain fetch as the Hub's clients call it. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gitBlobSha1, type HubServer, startHubServer } from './support/hub-server.js';

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

let hub: HubServer;
const weights = randomBytes(300_000);
const config = '{"model_type":"whisper"}\n';
let c1: string;
let c2: string;

beforeAll(async () => {
  hub = await startHubServer({ treePageSize: 3 });
  const repo = hub.createRepo('acme/tiny');
  c1 = await repo.commit({
    files: [
      { path: 'config.json', content: config },
      { path: 'model.safetensors', content: weights, lfs: true },
      { path: 'onnx/encoder.onnx', content: randomBytes(1000), lfs: true },
      { path: 'onnx/decoder.onnx', content: randomBytes(1000), lfs: true },
      { path: 'README.md', content: '# tiny\n' },
    ],
  });
  repo.tag('v1', c1);
  c2 = await repo.commit({ files: [{ path: 'config.json', content: '{"model_type":"whisper","v":2}\n' }] });
  repo.pullRequest(1, c1);
  const ds = hub.createRepo('acme/data', { type: 'dataset' });
  await ds.commit({ files: [{ path: 'train.csv', content: 'a,b\n1,2\n' }] });
  const gated = hub.createRepo('acme/gated');
  await gated.commit({ files: [{ path: 'w.bin', content: randomBytes(100), lfs: true }] });
  hub.gate('acme/gated', ['hf_accepted']);
  hub.addToken('hf_other');
});
afterAll(async () => hub.close());
beforeEach(() => hub.reset());

const getJson = async <T>(path: string, init?: RequestInit): Promise<{ res: Response; body: T }> => {
  const res = await fetch(`${hub.url}${path}`, init);
  return { res, body: (await res.json()) as T };
};

describe('stand-in Hub: revision', () => {
  it('resolves a branch, a tag, a commit and an encoded refs/pr/1 to the commit sha', async () => {
    for (const [rev, sha] of [['main', c2], ['HEAD', c2], ['v1', c1], [c1, c1], [encodeURIComponent('refs/pr/1'), c1]] as const) {
      const { res, body } = await getJson<{ sha: string; id: string; siblings: Array<{ rfilename: string }> }>(`/api/models/acme/tiny/revision/${rev}`);
      expect(res.status).toBe(200);
      expect(body.sha).toBe(sha);
      expect(body.id).toBe('acme/tiny');
      expect(body.siblings.map((s) => s.rfilename)).toContain('onnx/encoder.onnx');
    }
  });

  it('/api/models/{repo} without a revision answers for the default branch', async () => {
    expect((await getJson<{ sha: string }>('/api/models/acme/tiny')).body.sha).toBe(c2);
  });

  it('a dataset answers under /api/datasets/ and not under /api/models/', async () => {
    expect((await getJson<{ sha: string }>('/api/datasets/acme/data/revision/main')).res.status).toBe(200);
    const miss = await fetch(`${hub.url}/api/models/acme/data/revision/main`);
    expect(miss.status).toBe(401);
    expect(miss.headers.get('x-error-code')).toBe('RepoNotFound');
  });

  it('?blobs=true adds size, blobId and lfs.sha256 to siblings', async () => {
    const { body } = await getJson<{ siblings: Array<{ rfilename: string; size: number; blobId: string; lfs?: { sha256: string; size: number } }> }>(
      '/api/models/acme/tiny/revision/main?blobs=true',
    );
    const st = body.siblings.find((s) => s.rfilename === 'model.safetensors');
    expect(st?.lfs).toMatchObject({ sha256: sha256(weights), size: weights.length });
    expect(body.siblings.find((s) => s.rfilename === 'README.md')?.blobId).toBe(gitBlobSha1(Buffer.from('# tiny\n')));
  });
});

describe('stand-in Hub: tree', () => {
  it('pages with an absolute Link rel="next" and gives git and LFS entries in the Hub shapes', async () => {
    const seen: Array<Record<string, unknown>> = [];
    let next: string | undefined = `${hub.url}/api/models/acme/tiny/tree/${c1}?recursive=true&expand=false`;
    let pages = 0;
    while (next) {
      const res = await fetch(next);
      expect(res.status).toBe(200);
      seen.push(...((await res.json()) as Array<Record<string, unknown>>));
      next = /<(https?:\/\/[^>]+)>;\s+rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
      pages++;
    }
    expect(pages).toBe(2); // 6 entries (5 files + the onnx folder), 3 a page
    expect(seen.map((e) => e.path)).toEqual(['README.md', 'config.json', 'model.safetensors', 'onnx', 'onnx/decoder.onnx', 'onnx/encoder.onnx']);
    const cfg = seen.find((e) => e.path === 'config.json');
    expect(cfg).toEqual({ type: 'file', oid: gitBlobSha1(Buffer.from(config)), size: config.length, path: 'config.json' });
    const st = seen.find((e) => e.path === 'model.safetensors') as { oid: string; size: number; lfs: { oid: string; size: number; pointerSize: number } };
    const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(weights)}\nsize ${weights.length}\n`;
    expect(st.lfs).toEqual({ oid: sha256(weights), size: weights.length, pointerSize: pointer.length });
    expect(st.oid).toBe(gitBlobSha1(Buffer.from(pointer)));
    expect(st.size).toBe(weights.length);
    expect(seen.find((e) => e.path === 'onnx')).toMatchObject({ type: 'directory', size: 0 });
  });

  it('a git file oid matches `git hash-object`', async () => {
    // `printf 'hello\n' | git hash-object --stdin` = ce013625030ba8dba906f756967f9e9ca394464a
    expect(gitBlobSha1(Buffer.from('hello\n'))).toBe('ce013625030ba8dba906f756967f9e9ca394464a');
  });

  it('lists a sub-folder without recursion, and an unknown folder is EntryNotFound', async () => {
    const { body } = await getJson<Array<{ path: string }>>('/api/models/acme/tiny/tree/main/onnx');
    expect(body.map((e) => e.path)).toEqual(['onnx/decoder.onnx', 'onnx/encoder.onnx']);
    const miss = await fetch(`${hub.url}/api/models/acme/tiny/tree/main/nope`);
    expect([miss.status, miss.headers.get('x-error-code')]).toEqual([404, 'EntryNotFound']);
  });

  it('expand=true adds lastCommit', async () => {
    const { body } = await getJson<Array<{ path: string; lastCommit?: { id: string } }>>('/api/models/acme/tiny/tree/main?recursive=true&expand=true');
    expect(body.find((e) => e.path === 'config.json')?.lastCommit?.id).toBe(c2);
  });
});

describe('stand-in Hub: paths-info', () => {
  it('answers JSON and form bodies, leaving out missing paths', async () => {
    const json = await getJson<Array<{ path: string; type: string }>>(`/api/models/acme/tiny/paths-info/${c1}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ paths: ['config.json', 'onnx', 'missing.bin'] }),
    });
    expect(json.body.map((e) => [e.path, e.type])).toEqual([['config.json', 'file'], ['onnx', 'directory']]);
    const form = await getJson<Array<{ path: string; lfs?: { oid: string } }>>(`/api/models/acme/tiny/paths-info/main`, {
      method: 'POST',
      body: new URLSearchParams([['paths', 'model.safetensors'], ['expand', 'False']]),
    });
    expect(form.body[0]?.lfs?.oid).toBe(sha256(weights));
  });
});

describe('stand-in Hub: resolve', () => {
  it('serves a git file with X-Repo-Commit, the blob sha1 as ETag, and Range', async () => {
    const res = await fetch(`${hub.url}/acme/tiny/resolve/v1/config.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-repo-commit')).toBe(c1);
    expect(res.headers.get('etag')).toBe(`"${gitBlobSha1(Buffer.from(config))}"`);
    expect(await res.text()).toBe(config);
    const part = await fetch(`${hub.url}/acme/tiny/resolve/v1/config.json`, { headers: { Range: 'bytes=2-5' } });
    expect([part.status, part.headers.get('content-range'), await part.text()]).toEqual([206, `bytes 2-5/${config.length}`, config.slice(2, 6)]);
  });

  it('redirects an LFS file to the file host, which never sees the token and honours Range and If-Range', async () => {
    hub.addToken('hf_secret');
    const head = await fetch(`${hub.url}/acme/tiny/resolve/${c1}/model.safetensors`, { method: 'HEAD', redirect: 'manual', headers: { Authorization: 'Bearer hf_secret' } });
    expect(head.status).toBe(302);
    expect(head.headers.get('x-linked-etag')).toBe(`"${sha256(weights)}"`);
    expect(head.headers.get('etag')).toBe(`"${sha256(weights)}"`);
    expect(head.headers.get('x-linked-size')).toBe(String(weights.length));
    expect(head.headers.get('x-repo-commit')).toBe(c1);
    const location = head.headers.get('location') ?? '';
    expect(new URL(location).origin).toBe(hub.fileHost.url);
    expect(new URL(location).origin).not.toBe(hub.url);

    // fetch drops Authorization on a cross-origin redirect (Fetch spec), so following is safe here.
    const full = await fetch(`${hub.url}/acme/tiny/resolve/main/model.safetensors`, { headers: { Authorization: 'Bearer hf_secret' } });
    expect(Buffer.from(await full.arrayBuffer()).equals(weights)).toBe(true);
    const etag = full.headers.get('etag') ?? '';
    const part = await fetch(location, { headers: { Range: 'bytes=1000-', 'If-Range': etag } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(weights.subarray(1000))).toBe(true);
    const stale = await fetch(location, { headers: { Range: 'bytes=1000-', 'If-Range': '"stale"' } });
    expect(stale.status).toBe(200);
    await stale.arrayBuffer();
    await hub.settled();
    expect(hub.fileHost.requests.length).toBe(3);
    expect(hub.fileHost.requests.every((r) => r.authorization === undefined)).toBe(true);
    expect(hub.requests.filter((r) => r.path.includes('/resolve/')).every((r) => r.authorization === 'Bearer hf_secret')).toBe(true);
  });

  it('serves datasets under /datasets/ and records zero /api/ requests for resolve-only traffic', async () => {
    const res = await fetch(`${hub.url}/datasets/acme/data/resolve/main/train.csv`);
    expect(await res.text()).toBe('a,b\n1,2\n');
    expect(hub.count('/api/')).toBe(0);
    expect(hub.count('/datasets/')).toBe(1);
  });
});

describe('stand-in Hub: errors', () => {
  const code = async (path: string, init?: RequestInit): Promise<[number, string | null]> => {
    const res = await fetch(`${hub.url}${path}`, { redirect: 'manual', ...init });
    await res.arrayBuffer();
    return [res.status, res.headers.get('x-error-code')];
  };

  it('RepoNotFound (401 anonymous, 404 with a token), RevisionNotFound, EntryNotFound', async () => {
    expect(await code('/api/models/acme/none/revision/main')).toEqual([401, 'RepoNotFound']);
    expect(await code('/api/models/acme/none/revision/main', { headers: { Authorization: 'Bearer hf_other' } })).toEqual([404, 'RepoNotFound']);
    expect(await code('/api/models/acme/tiny/revision/nobranch')).toEqual([404, 'RevisionNotFound']);
    expect(await code('/acme/tiny/resolve/main/nofile.bin')).toEqual([404, 'EntryNotFound']);
    const res = await fetch(`${hub.url}/api/models/acme/tiny/revision/nobranch`);
    expect(await res.json()).toEqual({ error: 'Invalid rev id: nobranch' });
    expect(res.headers.get('x-error-message')).toBe('Invalid rev id: nobranch');
  });

  it('an unknown token is 401 "Invalid credentials in Authorization header" without an error code', async () => {
    const res = await fetch(`${hub.url}/api/models/acme/tiny/revision/main`, { headers: { Authorization: 'Bearer hf_bogus' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('x-error-code')).toBeNull();
    expect(res.headers.get('x-error-message')).toBe('Invalid credentials in Authorization header');
  });

  it('a gated repo: metadata public, files 401 GatedRepo anonymous, 403 with a token that did not accept, 302 with one that did', async () => {
    expect(await code('/api/models/acme/gated/revision/main')).toEqual([200, null]);
    expect(await code('/acme/gated/resolve/main/w.bin')).toEqual([401, 'GatedRepo']);
    expect(await code('/acme/gated/resolve/main/w.bin', { headers: { Authorization: 'Bearer hf_other' } })).toEqual([403, 'GatedRepo']);
    expect(await code('/acme/gated/resolve/main/w.bin', { headers: { Authorization: 'Bearer hf_accepted' } })).toEqual([302, null]);
  });

  it('429 with Retry-After and RateLimit headers, then normal service', async () => {
    hub.rateLimit({ times: 1, resetSeconds: 7 });
    const limited = await fetch(`${hub.url}/api/models/acme/tiny/revision/main`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    expect(limited.headers.get('ratelimit')).toBe('"api";r=0;t=7');
    expect(limited.headers.get('ratelimit-policy')).toBe('"fixed window";"api";q=500;w=300');
    expect((await fetch(`${hub.url}/api/models/acme/tiny/revision/main`)).status).toBe(200);
    // The api bucket does not limit resolve.
    hub.rateLimit({ times: 1 });
    expect((await fetch(`${hub.url}/acme/tiny/resolve/main/README.md`)).status).toBe(200);
  });
});

describe('stand-in Hub: fixtures change', () => {
  it('moving a branch changes what revision/main and resolve/main answer', async () => {
    const repo = hub.repo('acme/tiny');
    const before = (await getJson<{ sha: string }>('/api/models/acme/tiny/revision/main')).body.sha;
    const c3 = await repo.commit({ files: [{ path: 'model.safetensors', content: Buffer.from('new weights'), lfs: true }], delete: ['README.md'] });
    expect(c3).not.toBe(before);
    expect((await getJson<{ sha: string }>('/api/models/acme/tiny/revision/main')).body.sha).toBe(c3);
    const head = await fetch(`${hub.url}/acme/tiny/resolve/main/model.safetensors`, { method: 'HEAD', redirect: 'manual' });
    expect(head.headers.get('x-linked-etag')).toBe(`"${sha256('new weights')}"`);
    expect((await fetch(`${hub.url}/acme/tiny/resolve/main/README.md`)).status).toBe(404);
    // The old commit is still there, byte for byte.
    expect(await (await fetch(`${hub.url}/acme/tiny/resolve/${c1}/README.md`)).text()).toBe('# tiny\n');
    repo.setBranch('main', before);
    expect((await getJson<{ sha: string }>('/api/models/acme/tiny/revision/main')).body.sha).toBe(before);
  });
});

describe('stand-in Hub: renamed repo', () => {
  it('answers a relative 307 to the new name on the API and resolve', async () => {
    const repo = hub.createRepo('old-org/model');
    await repo.commit({ files: [{ path: 'a.txt', content: 'a' }] });
    hub.renameRepo('old-org/model', 'new-org/model');
    const res = await fetch(`${hub.url}/old-org/model/resolve/main/a.txt`, { redirect: 'manual' });
    expect([res.status, res.headers.get('location')]).toEqual([307, '/new-org/model/resolve/main/a.txt']);
    const api = await fetch(`${hub.url}/api/models/old-org/model/tree/main?recursive=true`, { redirect: 'manual' });
    expect(api.headers.get('location')).toBe('/api/models/new-org/model/tree/main?recursive=true');
    expect(await (await fetch(`${hub.url}/old-org/model/resolve/main/a.txt`)).text()).toBe('a');
  });
});

describe('stand-in Hub: local HF cache', () => {
  it('writes blobs named by ETag, snapshot symlinks and refs as huggingface_hub lays them out', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hf-cache-'));
    try {
      const folder = await hub.writeLocalCache(dir, 'acme/tiny', 'v1', { paths: ['model.safetensors', 'onnx/encoder.onnx', 'README.md'] });
      expect(folder).toBe(join(dir, 'models--acme--tiny'));
      expect((await readFile(join(folder, 'blobs', sha256(weights)))).equals(weights)).toBe(true);
      expect(await readFile(join(folder, 'blobs', gitBlobSha1(Buffer.from('# tiny\n'))), 'utf8')).toBe('# tiny\n');
      expect(await readlink(join(folder, 'snapshots', c1, 'onnx', 'encoder.onnx'))).toMatch(/^\.\.\/\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/);
      expect((await readFile(join(folder, 'snapshots', c1, 'model.safetensors'))).equals(weights)).toBe(true);
      expect(await readFile(join(folder, 'refs', 'v1'), 'utf8')).toBe(c1);
      // Nothing was fetched to build it.
      expect(hub.requests.length + hub.fileHost.requests.length).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('stand-in Hub: LFS files from disk', () => {
  it('serves a fromFile LFS object without holding it in memory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hub-from-file-'));
    try {
      const file = join(dir, 'big.bin');
      await writeFile(file, weights);
      const repo = hub.createRepo('acme/disk');
      await repo.commit({ files: [{ path: 'big.bin', fromFile: file }] });
      const entry = repo.resolve('main')?.files.get('big.bin');
      expect(entry?.content).toBeUndefined();
      expect(entry?.lfs?.oid).toBe(sha256(weights));
      const got = Buffer.from(await (await fetch(`${hub.url}/acme/disk/resolve/main/big.bin`)).arrayBuffer());
      expect(got.equals(weights)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('stand-in Hub: Xet-backed repo', () => {
  it('adds xetHash (not the sha256) to LFS entries and X-Xet-Hash to the redirect; the bytes still come by plain GET', async () => {
    const xet = await startHubServer({ xet: true });
    try {
      await xet.createRepo('acme/x').commit({ files: [{ path: 'w.bin', content: weights, lfs: true }, { path: 'c.json', content: '{}' }] });
      const tree = (await (await fetch(`${xet.url}/api/models/acme/x/tree/main?recursive=true`)).json()) as Array<{ path: string; xetHash?: string; lfs?: { oid: string } }>;
      const w = tree.find((e) => e.path === 'w.bin');
      expect(w?.xetHash).toMatch(/^[0-9a-f]{64}$/);
      expect(w?.xetHash).not.toBe(w?.lfs?.oid);
      expect(tree.find((e) => e.path === 'c.json')?.xetHash).toBeUndefined();
      const head = await fetch(`${xet.url}/acme/x/resolve/main/w.bin`, { method: 'HEAD', redirect: 'manual' });
      expect(head.headers.get('x-xet-hash')).toBe(w?.xetHash);
      expect(head.headers.get('link')).toMatch(/rel="xet-auth"/);
      expect(Buffer.from(await (await fetch(`${xet.url}/acme/x/resolve/main/w.bin`)).arrayBuffer()).equals(weights)).toBe(true);
    } finally {
      await xet.close();
    }
  });
});

describe('stand-in Hub: file host faults', () => {
  it('passes faults to the file host (here a flipped byte), for integrity tests', async () => {
    const faulty = await startHubServer({ fileHost: { fault: ({ attempt }) => (attempt === 1 ? { kind: 'corrupt' } : undefined) } });
    try {
      await faulty.createRepo('acme/x').commit({ files: [{ path: 'w.bin', content: weights, lfs: true }] });
      const first = Buffer.from(await (await fetch(`${faulty.url}/acme/x/resolve/main/w.bin`)).arrayBuffer());
      expect(first.length).toBe(weights.length);
      expect(sha256(first)).not.toBe(sha256(weights));
      const second = Buffer.from(await (await fetch(`${faulty.url}/acme/x/resolve/main/w.bin`)).arrayBuffer());
      expect(second.equals(weights)).toBe(true);
    } finally {
      await faulty.close();
    }
  });
});

describe('an outside LFS host (the benchmark points it at its nginx)', () => {
  it('writes LFS objects under its root, redirects resolve to its URL, and leaves its root on close', async () => {
    const { startRegistryServer } = await import('./support/registry-server.js');
    const root = await mkdtemp(join(tmpdir(), 'hub-lfs-host-'));
    const outside = await startRegistryServer({ root });
    try {
      const own = await startHubServer({ lfsHost: { url: outside.url, root } });
      const bytes = randomBytes(5000);
      let location = '';
      try {
        await own.createRepo('acme/cdn').commit({ files: [{ path: 'w.bin', content: bytes, lfs: true }] });
        const res = await fetch(`${own.url}/acme/cdn/resolve/main/w.bin`, { redirect: 'manual' });
        expect(res.status).toBe(302);
        location = res.headers.get('location') ?? '';
        expect(location.startsWith(`${outside.url}/`)).toBe(true);
        expect(sha256(Buffer.from(await (await fetch(location)).arrayBuffer()))).toBe(sha256(bytes));
      } finally {
        await own.close();
      }
      expect(sha256(await readFile(join(root, new URL(location).pathname)))).toBe(sha256(bytes));
    } finally {
      await outside.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
