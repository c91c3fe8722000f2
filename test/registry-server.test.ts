import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RegistryServer, type ServerOptions, randomFaults, startRegistryServer } from './support/registry-server.js';
import { CONFORMANCE } from './support/cli.js';

const SIZE = 200_000;
let dir: string;
let root: string;
let blob: Buffer;
let blobPath: string;
const modelsJson = JSON.stringify({ demo: { tiny: { v1: { hash: '0'.repeat(64) } } } });

let srv: RegistryServer | undefined;
async function start(options: Partial<ServerOptions> = {}): Promise<RegistryServer> {
  srv = await startRegistryServer({ root, ...options });
  return srv;
}

interface RawResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  error?: string;
}

/** A raw node:http GET that keeps whatever arrived, so short or broken bodies can be inspected. */
function rawGet(url: string, path: string, headers: Record<string, string> = {}): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { headers: { ...headers, connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      const done = (error?: string): void => {
        const out: RawResult = { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
        if (error !== undefined) out.error = error;
        resolve(out);
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done());
      res.on('error', (e) => done(e.message));
      res.on('aborted', () => done('aborted'));
    });
    // fetch normalises dot segments, so traversal attempts need the raw path on the wire.
    req.path = path;
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'registry-server-'));
  root = join(dir, 'registry');
  blob = randomBytes(SIZE);
  await mkdir(join(root, 'data'), { recursive: true });
  blobPath = `/data/${createHash('sha256').update(blob).digest('hex')}`;
  await writeFile(join(root, blobPath), blob);
  await writeFile(join(root, 'data', 'empty'), Buffer.alloc(0));
  await writeFile(join(root, 'models.json'), modelsJson);
  await writeFile(join(dir, 'secret.txt'), 'top secret');
  await symlink(join(dir, 'secret.txt'), join(root, 'data', 'escape'));
});

afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('static serving', () => {
  it('serves a full file with length, type and validators, and records the request', async () => {
    const s = await start();
    const res = await fetch(`${s.url}${blobPath}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(SIZE));
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(res.headers.get('last-modified')).toMatch(/GMT$/);
    expect(Buffer.from(await res.arrayBuffer()).equals(blob)).toBe(true);
    await s.settled();
    expect(s.requests).toEqual([
      { method: 'GET', path: blobPath, status: 200, bytesSent: SIZE, aborted: false },
    ]);
  });

  it('serves models.json as application/json and the conformance registry byte-exactly', async () => {
    let s = await start();
    const res = await fetch(`${s.url}/models.json`);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.text()).toBe(modelsJson);
    await s.close();

    s = await start({ root: join(CONFORMANCE, 'registry') });
    const index = (await (await fetch(`${s.url}/models.json`)).json()) as Record<string, Record<string, Record<string, { hash: string }>>>;
    const hash = index.demo?.tiny?.v1?.hash ?? '';
    const manifest = Buffer.from(await (await fetch(`${s.url}/data/${hash}`)).arrayBuffer());
    expect(createHash('sha256').update(manifest).digest('hex')).toBe(hash);
  });

  it('answers HEAD with headers only and serves an empty file', async () => {
    const s = await start();
    const head = await fetch(`${s.url}${blobPath}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(SIZE));
    expect((await head.arrayBuffer()).byteLength).toBe(0);
    const empty = await fetch(`${s.url}/data/empty`);
    expect(empty.status).toBe(200);
    expect(empty.headers.get('content-length')).toBe('0');
    await s.settled();
    expect(s.requests.map((r) => [r.method, r.bytesSent])).toEqual([['HEAD', 0], ['GET', 0]]);
  });

  it('404s missing files, directories and the root, and 405s other methods', async () => {
    const s = await start();
    expect((await fetch(`${s.url}/data/${'a'.repeat(64)}`)).status).toBe(404);
    expect((await fetch(`${s.url}/data`)).status).toBe(404);
    expect((await fetch(`${s.url}/`)).status).toBe(404);
    const post = await fetch(`${s.url}/models.json`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('refuses every path that would escape root, encoded or not, and symlinks out of root', async () => {
    const s = await start();
    for (const p of [
      '/../secret.txt',
      '/data/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/data/%2E%2E/%2e%2e/secret.txt',
      '/data%2f..%2f..%2fsecret.txt',
      '/..%5csecret.txt',
      '/data/escape',
      '/data/%00',
      '/%zz',
    ]) {
      const res = await rawGet(s.url, p);
      expect({ p, status: res.status }).toEqual({ p, status: 404 });
      expect(res.body.toString()).not.toContain('top secret');
    }
    // The same file reached without traversal is served, so the 404s above are the guard at work.
    expect((await rawGet(s.url, '/data/./../models.json')).status).toBe(404);
    expect((await rawGet(s.url, '//models.json')).status).toBe(200);
  });

  it('answers conditional GETs with 304', async () => {
    const s = await start();
    const first = await fetch(`${s.url}/models.json`);
    const etag = first.headers.get('etag') ?? '';
    const lastModified = first.headers.get('last-modified') ?? '';
    await first.arrayBuffer();
    expect((await fetch(`${s.url}/models.json`, { headers: { 'If-None-Match': etag } })).status).toBe(304);
    expect((await fetch(`${s.url}/models.json`, { headers: { 'If-None-Match': '"other"' } })).status).toBe(200);
    expect((await fetch(`${s.url}/models.json`, { headers: { 'If-Modified-Since': lastModified } })).status).toBe(304);
  });

  it('can drop ETag, Last-Modified and range support', async () => {
    const s = await start({ etag: false, lastModified: false, ranges: false });
    const res = await fetch(`${s.url}${blobPath}`, { headers: { Range: 'bytes=0-9' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBeNull();
    expect(res.headers.get('last-modified')).toBeNull();
    expect(res.headers.get('accept-ranges')).toBeNull();
    expect((await res.arrayBuffer()).byteLength).toBe(SIZE);
  });
});

describe('ranges', () => {
  it('serves bytes=N-M, bytes=N- and bytes=-N as 206 with Content-Range', async () => {
    const s = await start();
    const cases: Array<[string, number, number]> = [
      ['bytes=100-199', 100, 199],
      ['bytes=150000-', 150_000, SIZE - 1],
      ['bytes=-10', SIZE - 10, SIZE - 1],
      ['bytes=199990-999999', 199_990, SIZE - 1],
    ];
    for (const [range, start, end] of cases) {
      const res = await fetch(`${s.url}${blobPath}`, { headers: { Range: range } });
      expect(res.status).toBe(206);
      expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${SIZE}`);
      expect(res.headers.get('content-length')).toBe(String(end - start + 1));
      expect(Buffer.from(await res.arrayBuffer()).equals(blob.subarray(start, end + 1))).toBe(true);
    }
    await s.settled();
    expect(s.requests[0]?.range).toBe('bytes=100-199');
    expect(s.requests[0]?.bytesSent).toBe(100);
  });

  it('answers 416 with bytes */size when the range starts past the end', async () => {
    const s = await start();
    const res = await fetch(`${s.url}${blobPath}`, { headers: { Range: `bytes=${SIZE}-` } });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe(`bytes */${SIZE}`);
    expect((await fetch(`${s.url}/data/empty`, { headers: { Range: 'bytes=0-' } })).status).toBe(416);
  });

  it('ignores multi-range and malformed Range headers (full 200)', async () => {
    const s = await start();
    for (const range of ['bytes=0-1,5-6', 'items=0-1', 'bytes=9-3']) {
      const res = await fetch(`${s.url}${blobPath}`, { headers: { Range: range } });
      expect(res.status).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBe(SIZE);
    }
  });

  it('honours If-Range: 206 on a matching strong ETag or exact date, 200 otherwise', async () => {
    const s = await start();
    const head = await fetch(`${s.url}${blobPath}`, { method: 'HEAD' });
    const etag = head.headers.get('etag') ?? '';
    const lastModified = head.headers.get('last-modified') ?? '';
    const get = async (ifRange: string): Promise<[number, number]> => {
      const res = await fetch(`${s.url}${blobPath}`, { headers: { Range: 'bytes=10-19', 'If-Range': ifRange } });
      return [res.status, (await res.arrayBuffer()).byteLength];
    };
    expect(await get(etag)).toEqual([206, 10]);
    expect(await get(lastModified)).toEqual([206, 10]);
    expect(await get('"stale-etag"')).toEqual([200, SIZE]);
    expect(await get(`W/${etag}`)).toEqual([200, SIZE]);
    expect(await get(new Date(Date.parse(lastModified) - 1000).toUTCString())).toEqual([200, SIZE]);
    await s.settled();
    expect(s.requests.at(-1)?.ifRange).toMatch(/GMT$/);
  });
});

describe('faults', () => {
  it('status: sends the status, Retry-After and body, before auth and 404', async () => {
    const s = await start({
      requireToken: 't',
      fault: ({ path }) => (path === '/models.json' ? { kind: 'status', status: 429, retryAfter: '3' } : { kind: 'status', status: 503, body: 'down' }),
    });
    const res = await fetch(`${s.url}/models.json`);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('3');
    const missing = await fetch(`${s.url}/nope`);
    expect(missing.status).toBe(503);
    expect(missing.headers.get('retry-after')).toBeNull();
    expect(await missing.text()).toBe('down');
    await s.settled();
    expect(s.requests.map((r) => r.fault)).toEqual(['status', 'status']);
  });

  it('attempt counts requests per path, so a fault can clear on retry', async () => {
    const seen: string[] = [];
    const s = await start({
      fault: ({ path, attempt, method }) => {
        seen.push(`${method} ${path} ${attempt}`);
        return attempt === 1 ? { kind: 'status', status: 500 } : undefined;
      },
    });
    expect((await fetch(`${s.url}/models.json`)).status).toBe(500);
    expect((await fetch(`${s.url}/models.json`)).status).toBe(200);
    expect((await fetch(`${s.url}${blobPath}`, { method: 'HEAD' })).status).toBe(500);
    s.reset();
    expect(s.requests).toEqual([]);
    expect((await fetch(`${s.url}/models.json`)).status).toBe(500);
    expect(seen).toEqual(['GET /models.json 1', 'GET /models.json 2', `HEAD ${blobPath} 1`, 'GET /models.json 1']);
    await s.settled();
    expect(s.count('/models')).toBe(1);
    expect(s.count()).toBe(1);
  });

  it('reset before headers makes fetch reject', async () => {
    const s = await start({ fault: () => ({ kind: 'reset' }) });
    await expect(fetch(`${s.url}/models.json`)).rejects.toThrow();
    await s.settled();
    expect(s.requests[0]).toMatchObject({ status: 0, aborted: true, fault: 'reset' });
  });

  it('reset mid-body makes reading the body fail after some bytes', async () => {
    const s = await start({ fault: () => ({ kind: 'reset', afterBytes: 70_000 }) });
    const res = await fetch(`${s.url}${blobPath}`);
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow();
    await s.settled();
    expect(s.requests[0]).toMatchObject({ status: 200, bytesSent: 70_000, aborted: true });
  });

  it('truncate sends the full Content-Length but fewer bytes, then closes', async () => {
    const s = await start({ fault: () => ({ kind: 'truncate', afterBytes: 12_345 }) });
    const raw = await rawGet(s.url, blobPath);
    expect(raw.status).toBe(200);
    expect(raw.headers['content-length']).toBe(String(SIZE));
    expect(raw.body.length).toBe(12_345);
    expect(raw.body.equals(blob.subarray(0, 12_345))).toBe(true);
    expect(raw.error).toBeDefined();
    const res = await fetch(`${s.url}${blobPath}`);
    await expect(res.arrayBuffer()).rejects.toThrow();
  });

  it('truncate past the end still cuts the last byte', async () => {
    const s = await start({ fault: () => ({ kind: 'truncate', afterBytes: 10 ** 9 }) });
    const raw = await rawGet(s.url, '/models.json');
    expect(raw.body.length).toBe(modelsJson.length - 1);
  });

  it('corrupt flips one byte, same length and status, on ranges too', async () => {
    const s = await start({ fault: ({ attempt }) => (attempt === 1 ? { kind: 'corrupt' } : { kind: 'corrupt', at: 5 }) });
    const full = Buffer.from(await (await fetch(`${s.url}${blobPath}`)).arrayBuffer());
    expect(full.length).toBe(SIZE);
    const diff = [...full.keys()].filter((i) => full[i] !== blob[i]);
    expect(diff).toEqual([SIZE / 2]);
    const part = await fetch(`${s.url}${blobPath}`, { headers: { Range: 'bytes=1000-1099' } });
    expect(part.status).toBe(206);
    const body = Buffer.from(await part.arrayBuffer());
    const partDiff = [...body.keys()].filter((i) => body[i] !== blob[1000 + i]);
    expect(partDiff).toEqual([5]);
  });

  it('stall forever times out under AbortSignal.timeout, before headers or mid-body', async () => {
    const s = await start({ fault: ({ path }) => (path === '/models.json' ? { kind: 'stall' } : { kind: 'stall', afterBytes: 1000 }) });
    const t0 = Date.now();
    await expect(fetch(`${s.url}/models.json`, { signal: AbortSignal.timeout(200) })).rejects.toThrow(/aborted|timeout/i);
    const res = await fetch(`${s.url}${blobPath}`, { signal: AbortSignal.timeout(300) });
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow(/aborted|timeout/i);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    await s.settled();
    expect(s.requests.map((r) => [r.path, r.bytesSent, r.aborted])).toEqual([
      ['/models.json', 0, true],
      [blobPath, 1000, true],
    ]);
  });

  it('stall with ms delays then completes correctly', async () => {
    const s = await start({ fault: () => ({ kind: 'stall', afterBytes: 100, ms: 250 }) });
    const t0 = Date.now();
    const body = Buffer.from(await (await fetch(`${s.url}${blobPath}`)).arrayBuffer());
    expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
    expect(body.equals(blob)).toBe(true);
  });

  it('html returns a 200 captive-portal page instead of the file', async () => {
    const s = await start({ fault: () => ({ kind: 'html' }) });
    const res = await fetch(`${s.url}${blobPath}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toMatch(/^<!DOCTYPE html>/);
  });

  it('redirect sends Location, which fetch follows to another server', async () => {
    const other = await startRegistryServer({ root });
    try {
      const s = await start({ fault: ({ path }) => ({ kind: 'redirect', location: `${other.url}${path}`, status: 307 }) });
      const manual = await fetch(`${s.url}/models.json`, { redirect: 'manual' });
      expect(manual.status).toBe(307);
      expect(manual.headers.get('location')).toBe(`${other.url}/models.json`);
      const followed = await fetch(`${s.url}/models.json`);
      expect(followed.url).toBe(`${other.url}/models.json`);
      expect(await followed.text()).toBe(modelsJson);
      await other.settled();
      expect(other.count('/models.json')).toBe(1);
    } finally {
      await other.close();
    }
  });
});

describe('auth, throttling, close', () => {
  it('requireToken: 401 without the right bearer token, 200 with it, and records the header', async () => {
    const s = await start({ requireToken: 'sekret' });
    const none = await fetch(`${s.url}/models.json`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await fetch(`${s.url}/models.json`, { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
    const ok = await fetch(`${s.url}/models.json`, { headers: { Authorization: 'Bearer sekret' } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe(modelsJson);
    await s.settled();
    expect(s.requests.map((r) => r.authorization)).toEqual([undefined, 'Bearer wrong', 'Bearer sekret']);
  });

  it('bytesPerSecond throttles the body', async () => {
    const s = await start({ bytesPerSecond: 100_000 });
    const t0 = Date.now();
    const res = await fetch(`${s.url}${blobPath}`, { headers: { Range: 'bytes=0-29999' } });
    expect((await res.arrayBuffer()).byteLength).toBe(30_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('close() does not hang with stalled connections open', async () => {
    const s = await startRegistryServer({ root, fault: () => ({ kind: 'stall', afterBytes: 10 }) });
    const pending = fetch(`${s.url}${blobPath}`).then((r) => r.arrayBuffer());
    const pendingHead = fetch(`${s.url}/models.json`, { method: 'HEAD' }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    await expect(pending).rejects.toThrow();
    await pendingHead;
    await expect(fetch(`${s.url}/models.json`)).rejects.toThrow();
  });
});

describe('randomFaults', () => {
  const paths = Array.from({ length: 400 }, (_, i) => `/data/${i.toString(16).padStart(64, '0')}`);
  const plan = (seed: number, maxPerPath?: number): string[] => {
    const f = randomFaults({ rate: 0.3, seed, ...(maxPerPath === undefined ? {} : { maxPerPath }) });
    const out: string[] = [];
    for (const path of paths) for (let attempt = 1; attempt <= 4; attempt++) out.push(JSON.stringify(f({ path, attempt, method: 'GET' }) ?? null));
    return out;
  };

  it('is deterministic for a seed, differs across seeds, and hits about `rate` of first attempts', () => {
    const a = plan(7);
    expect(plan(7)).toEqual(a);
    expect(plan(8)).not.toEqual(a);
    const firsts = a.filter((_, i) => i % 4 === 0);
    const faulted = firsts.filter((x) => x !== 'null').length;
    expect(faulted / firsts.length).toBeGreaterThan(0.2);
    expect(faulted / firsts.length).toBeLessThan(0.4);
    const kinds = new Set(a.filter((x) => x !== 'null').map((x) => (JSON.parse(x) as { kind: string; status?: number }).kind + ((JSON.parse(x) as { status?: number }).status ?? '')));
    expect(kinds).toEqual(new Set(['status500', 'status503', 'status429', 'reset', 'truncate', 'corrupt', 'stall']));
  });

  it('never faults a path more than maxPerPath times, whatever the order of calls', () => {
    for (const max of [1, 2]) {
      const a = plan(3, max);
      for (let p = 0; p < paths.length; p++) expect(a.slice(p * 4, p * 4 + 4).filter((x) => x !== 'null').length).toBeLessThanOrEqual(max);
    }
    const f = randomFaults({ rate: 0.5, seed: 1 });
    const forward = paths.map((path) => JSON.stringify(f({ path, attempt: 2, method: 'GET' }) ?? null));
    const backward = [...paths].reverse().map((path) => JSON.stringify(f({ path, attempt: 2, method: 'GET' }) ?? null)).reverse();
    expect(backward).toEqual(forward);
    expect(randomFaults({ rate: 1, seed: 1, maxPerPath: 0 })({ path: '/x', attempt: 1, method: 'GET' })).toBeUndefined();
  });

  it('a retrying client gets every byte through a server with rate 0.5', async () => {
    // A seed whose plan breaks the blob's first attempt (a short stall would not), so the retry loop is exercised.
    let seed = 0;
    while ((randomFaults({ rate: 0.5, seed, maxPerPath: 2 })({ path: blobPath, attempt: 1, method: 'GET' })?.kind ?? 'stall') === 'stall') seed++;
    const fault = randomFaults({ rate: 0.5, seed, maxPerPath: 2, stallMs: 10 });
    const s = await start({ fault });
    const got: Buffer[] = [];
    for (const path of [blobPath, '/models.json']) {
      for (let attempt = 1; ; attempt++) {
        expect(attempt).toBeLessThanOrEqual(3);
        try {
          const res = await fetch(`${s.url}${path}`, { signal: AbortSignal.timeout(2000) });
          if (res.status !== 200) {
            await res.arrayBuffer();
            continue;
          }
          const body = Buffer.from(await res.arrayBuffer());
          if (path === blobPath && !body.equals(blob)) continue;
          if (path === '/models.json' && body.toString() !== modelsJson) continue;
          got.push(body);
          break;
        } catch {
          continue;
        }
      }
    }
    expect(got.length).toBe(2);
    await s.settled();
    // The log is in order of completion (a quick 500 on a second connection can finish before the
    // first body): the first attempt's planned fault is among the blob's requests.
    const planned = fault({ path: blobPath, attempt: 1, method: 'GET' })?.kind;
    expect(planned).toBeDefined();
    expect(s.requests.filter((r) => r.path === blobPath).map((r) => r.fault)).toContain(planned);
    expect(s.count(blobPath)).toBeGreaterThan(1);
  });
});
