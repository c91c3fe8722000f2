/**
 * Network faults against real installs: mixed transient faults, Retry-After, non-retryable 4xx,
 * chunks that never match, stalls (idle timeout) versus slow-but-moving bodies, retry budget, and
 * mirrors (order and demotion).
 */
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HttpClient } from '../src/net/http.js';
import { RegistryClient } from '../src/registry/client.js';
import { type Fault, type FaultRequest, type RegistryServer, randomFaults, startRegistryServer } from './support/registry-server.js';
import { CONFORMANCE_REGISTRY, EXPECTED, cleanTemps, cliEnv, hasStackTrace, installedMatches, runCli, tempDir, writeProject } from './support/robustness.js';

const servers: RegistryServer[] = [];
async function serve(fault?: (req: FaultRequest) => Fault | undefined, extra: { bytesPerSecond?: number } = {}): Promise<RegistryServer> {
  const server = await startRegistryServer({ root: CONFORMANCE_REGISTRY, ...(fault ? { fault } : {}), ...extra });
  servers.push(server);
  return server;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(cleanTemps);

const ALL = {
  tiny: { model: 'demo/tiny', version: 'v1' },
  latest: { model: 'demo/tiny', version: 'latest' },
  edge: { model: 'demo/edge', version: 'v1' },
  vary: { model: 'demo/var', version: 'v1' },
  shared: { model: 'demo/shared', version: 'v1' },
};
const KEYS: Record<string, string> = { tiny: 'demo/tiny@v1', latest: 'demo/tiny@v2', edge: 'demo/edge@v1', vary: 'demo/var@v1', shared: 'demo/shared@v1' };

async function project(registry: string, models: Record<string, { model: string; version: string }> = ALL, extra: { mirrors?: string[] } = {}) {
  const dir = await tempDir();
  await writeProject(dir, registry, models, extra);
  return { dir, cache: join(dir, 'cache') };
}

async function expectAllExact(dir: string, names: string[]): Promise<void> {
  for (const name of names) expect(await installedMatches(join(dir, 'models', name), KEYS[name] as string), name).toEqual([]);
}

/** A chunk path of demo/tiny v1 (the first one of its manifest). */
function chunkPaths(server: RegistryServer): string[] {
  return [...new Set(server.requests.map((r) => r.path).filter((p) => p.startsWith('/data/')))];
}

describe('installs through mixed faults', () => {
  it('installs every conformance model byte-exactly through ~25% injected faults (3 seeds)', async () => {
    const runs = await Promise.all(
      [11, 12, 13].map(async (seed) => {
        const server = await serve(randomFaults({ rate: 0.25, seed, maxPerPath: 2, stallMs: 100 }));
        const { dir, cache } = await project(server.url);
        const result = await runCli(['install', '--json'], dir, cliEnv(cache, { MODELS_CONCURRENCY: '4' }));
        await server.settled();
        return { dir, result, server };
      }),
    );
    const kinds = new Map<string, number>();
    let faulted = 0;
    let total = 0;
    for (const { dir, result, server } of runs) {
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      await expectAllExact(dir, Object.keys(ALL));
      total += server.requests.length;
      for (const r of server.requests) {
        if (!r.fault) continue;
        faulted++;
        kinds.set(r.fault, (kinds.get(r.fault) ?? 0) + 1);
      }
    }
    // The faults really happened, and were of many kinds.
    expect(faulted / total).toBeGreaterThan(0.1);
    expect(kinds.size).toBeGreaterThanOrEqual(5);
    console.info(`mixed faults: ${faulted} of ${total} requests faulted: ${JSON.stringify(Object.fromEntries(kinds))}`);
  });

  it('resumes a chunk cut mid-body with Range + If-Range instead of starting over', async () => {
    const server = await serve(({ path, attempt }) => (path.startsWith('/data/') && attempt === 1 ? { kind: 'reset', afterBytes: 40_000 } : undefined));
    const { dir, cache } = await project(server.url, { tiny: ALL.tiny });
    const result = await runCli(['install'], dir, cliEnv(cache));
    expect(result.code, result.stderr).toBe(0);
    await expectAllExact(dir, ['tiny']);
    const ranged = server.requests.filter((r) => r.range !== undefined);
    expect(ranged.length).toBeGreaterThan(0);
    for (const r of ranged) {
      expect(r.range).toMatch(/^bytes=\d+-$/);
      expect(r.ifRange).toMatch(/^"/);
      expect(r.status).toBe(206);
    }
  });
});

describe('retry policy', () => {
  it('honours Retry-After (seconds) before asking again', async () => {
    const times: number[] = [];
    const server = await serve(({ path, attempt }) => {
      if (path === '/models.json') times.push(Date.now());
      return path === '/models.json' && attempt === 1 ? { kind: 'status', status: 503, retryAfter: '1' } : undefined;
    });
    const client = new RegistryClient([server.url], { http: new HttpClient(), retry: { baseDelayMs: 1 } });
    const { bytes } = await client.fetchSmall('models.json', 'the index', 1 << 20);
    expect(JSON.parse(bytes.toString())).toHaveProperty('demo');
    expect(times).toHaveLength(2);
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(900);
  });

  it('honours Retry-After as an HTTP date on 429', async () => {
    const times: number[] = [];
    const server = await serve(({ path, attempt }) => {
      if (path === '/models.json') times.push(Date.now());
      return path === '/models.json' && attempt === 1 ? { kind: 'status', status: 429, retryAfter: new Date(Date.now() + 2000).toUTCString() } : undefined;
    });
    const client = new RegistryClient([server.url], { http: new HttpClient(), retry: { baseDelayMs: 1 } });
    await client.fetchSmall('models.json', 'the index', 1 << 20);
    // HTTP dates have one-second resolution.
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(900);
  });

  it('backs off exponentially with jitter between rounds', async () => {
    const times: number[] = [];
    const server = await serve(({ path }) => {
      times.push(Date.now());
      return path === '/models.json' ? { kind: 'status', status: 500 } : undefined;
    });
    const client = new RegistryClient([server.url], { http: new HttpClient(), retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 10_000 } });
    await expect(client.fetchSmall('models.json', 'the index', 1 << 20)).rejects.toMatchObject({ code: 'E_NETWORK', exitCode: 5 });
    expect(times).toHaveLength(4);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    // Equal jitter: round n waits between base*2^n/2 and base*2^n.
    expect(gaps[0]).toBeGreaterThanOrEqual(45);
    expect(gaps[1]).toBeGreaterThanOrEqual(95);
    expect(gaps[2]).toBeGreaterThanOrEqual(195);
    expect(gaps[2]).toBeLessThan(1000);
  });

  for (const status of [400, 403, 410]) {
    it(`does not retry HTTP ${status}`, async () => {
      const server = await serve(({ path }) => (path === '/models.json' ? { kind: 'status', status } : undefined));
      const { dir, cache } = await project(server.url, { tiny: ALL.tiny });
      const result = await runCli(['install'], dir, cliEnv(cache));
      expect(result.code).toBe(status === 403 ? 9 : 5);
      expect(result.stderr).toContain(`HTTP ${status}`);
      expect(result.stderr).toContain(`${server.url}/models.json`);
      expect(server.count('/models.json')).toBe(1);
    });
  }

  it('a chunk 404 is "not found" (exit 3), asked once', async () => {
    const server = await serve(({ path }) => (path.startsWith('/data/') && path !== `/data/${EXPECTED['demo/tiny@v1']?.manifest}` ? { kind: 'status', status: 404 } : undefined));
    const { dir, cache } = await project(server.url, { tiny: ALL.tiny });
    const result = await runCli(['install', '--concurrency', '1'], dir, cliEnv(cache));
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/chunk [0-9a-f]{12} of tiny/);
    const chunkRequests = server.requests.filter((r) => r.status === 404);
    expect(new Set(chunkRequests.map((r) => r.path)).size).toBe(chunkRequests.length);
  });

  it('gives up after MODELS_RETRIES attempts with exit 5 naming the URL', async () => {
    const server = await serve(({ path }) => (path === '/models.json' ? { kind: 'reset' } : undefined));
    const { dir, cache } = await project(server.url, { tiny: ALL.tiny });
    const result = await runCli(['install'], dir, cliEnv(cache, { MODELS_RETRIES: '2' }));
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('gave up after 2 attempts');
    expect(result.stderr).toContain(server.url);
    expect(hasStackTrace(result.stderr)).toBe(false);
    expect(server.count('/models.json')).toBe(2);
  });

  it('discards a chunk that never matches after 1 + 2 fetches: exit 6 naming chunk, model and URL', async () => {
    const manifest = EXPECTED['demo/tiny@v1']?.manifest as string;
    let victim: string | undefined;
    const server = await serve(({ path }) => {
      if (!path.startsWith('/data/') || path === `/data/${manifest}`) return undefined;
      victim ??= path;
      return path === victim ? { kind: 'corrupt' } : undefined;
    });
    const { dir, cache } = await project(server.url, { tiny: ALL.tiny });
    const result = await runCli(['install'], dir, cliEnv(cache));
    await server.settled();
    expect(result.code).toBe(6);
    const hash = (victim as string).slice('/data/'.length);
    expect(result.stderr).toContain(`chunk ${hash.slice(0, 12)}`);
    expect(result.stderr).toContain('tiny');
    expect(result.stderr).toContain(`${server.url}${victim}`);
    expect(server.count(victim)).toBe(3);
    // Nothing half-made was promoted.
    expect(await installedMatches(join(dir, 'models', 'tiny'), 'demo/tiny@v1')).toContain('model.bin missing');
  });
});

describe('chunks checked by their files\' hashes', () => {
  it('finds the one chunk served corrupt once, fetches only it again, and installs byte-exactly', async () => {
    const manifest = EXPECTED['demo/tiny@v1']?.manifest as string;
    let victim: string | undefined;
    const server = await serve(({ path, attempt }) => {
      if (!path.startsWith('/data/') || path === `/data/${manifest}`) return undefined;
      victim ??= path;
      return path === victim && attempt === 1 ? { kind: 'corrupt' } : undefined;
    });
    const { dir, cache } = await project(server.url, { tiny: ALL.tiny });
    const result = await runCli(['install', '--verbose'], dir, cliEnv(cache));
    await server.settled();
    expect(result.code, result.stderr).toBe(0);
    await expectAllExact(dir, ['tiny']);
    // The file's hash caught it (no chunk was hashed alone), then the chunks were checked one by one.
    expect(result.stderr).toContain('checking its chunks one by one');
    expect(server.count(victim as string)).toBe(2);
    for (const path of chunkPaths(server)) if (path !== victim) expect(server.count(path), path).toBe(1);
  });

  it('a chunk pointer into the store that reads back the wrong bytes fails its file, is dropped, and the chunk comes from the network', async () => {
    const { readFile } = await import('node:fs/promises');
    const { Store } = await import('../src/store/store.js');
    const tiny = EXPECTED['demo/tiny@v1'];
    const edge = EXPECTED['demo/edge@v1'];
    const manifest = JSON.parse(await readFile(join(CONFORMANCE_REGISTRY, 'data', tiny?.manifest as string), 'utf8')) as { chunk_size: number; chunks: string[] };
    const first = manifest.chunks[0] as string; // all of it in model.bin, whose sha256 is known
    const server = await serve();
    const { dir, cache } = await project(server.url, { edge: ALL.edge });
    expect((await runCli(['install'], dir, cliEnv(cache))).code).toBe(0);
    // A pointer (as an edited or stale cache might hold) to bytes of another stored file.
    const store = new Store(cache);
    const deep = edge?.files['a/b/c/d/deep.bin']?.sha256 as string;
    await store.writePointer(first, [{ file: deep, offset: 0, length: manifest.chunk_size }]);
    await writeProject(dir, server.url, { edge: ALL.edge, tiny: ALL.tiny });
    const result = await runCli(['install', '--verbose'], dir, cliEnv(cache));
    expect(result.code, result.stderr).toBe(0);
    await expectAllExact(dir, ['edge', 'tiny']);
    expect(result.stderr).toContain('checking its chunks one by one');
    expect(server.count(`/data/${first}`)).toBe(1);
    expect(await store.readPointer(first)).toEqual([{ file: tiny?.files['model.bin']?.sha256, offset: 0, length: manifest.chunk_size }]);
  });
});

describe('timeouts', () => {
  it('abandons a stalled body after the idle timeout and retries it', async () => {
    const server = await serve(({ path, attempt }) => (path.startsWith('/data/') && attempt === 1 ? { kind: 'stall', afterBytes: 1000 } : undefined));
    const { dir, cache } = await project(server.url, { tiny: ALL.tiny });
    const started = Date.now();
    const result = await runCli(['install'], dir, cliEnv(cache, { MODELS_IDLE_TIMEOUT: '0.5' }));
    expect(result.code, result.stderr).toBe(0);
    await expectAllExact(dir, ['tiny']);
    expect(server.requests.filter((r) => r.fault === 'stall').length).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('does not fail a slow body that keeps moving (no total-time limit)', async () => {
    // 64 KiB chunks at 48 KB/s take longer than the 0.5 s idle timeout, yet each arrives in one request.
    const server = await serve(undefined, { bytesPerSecond: 48_000 });
    const { dir, cache } = await project(server.url, { edge: ALL.edge });
    const result = await runCli(['install', '--concurrency', '8'], dir, cliEnv(cache, { MODELS_IDLE_TIMEOUT: '0.5' }));
    expect(result.code, result.stderr).toBe(0);
    await expectAllExact(dir, ['edge']);
    const chunks = chunkPaths(server);
    expect(chunks.length).toBeGreaterThan(2);
    for (const path of chunks) expect(server.count(path), path).toBe(1);
  });
});

describe('mirrors', () => {
  it('tries MODELS_MIRRORS, then the registry, then `mirrors:`, and demotes a failing one for the rest of the run', async () => {
    const down = await serve(() => ({ kind: 'status', status: 503 }));
    const refused = await serve();
    const refusedUrl = refused.url;
    await refused.close();
    servers.splice(servers.indexOf(refused), 1);
    const good = await serve();
    const { dir, cache } = await project(down.url, { tiny: ALL.tiny, edge: ALL.edge }, { mirrors: [good.url] });
    const result = await runCli(['install', '--concurrency', '1'], dir, cliEnv(cache, { MODELS_MIRRORS: refusedUrl }));
    expect(result.code, result.stderr).toBe(0);
    await expectAllExact(dir, ['tiny', 'edge']);
    // The 503 registry was asked once or twice, then demoted behind the good mirror; the good mirror served everything.
    const served = good.requests.filter((r) => r.status === 200).length;
    expect(served).toBeGreaterThan(10);
    expect(down.requests.length).toBeLessThanOrEqual(2);
  });

  it('a broken registry with no mirror exits 5 with a hint about mirrors', async () => {
    const down = await serve(() => ({ kind: 'status', status: 502 }));
    const { dir, cache } = await project(down.url, { tiny: ALL.tiny });
    const result = await runCli(['install'], dir, cliEnv(cache, { MODELS_RETRIES: '2' }));
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/HTTP 502/);
    expect(result.stderr).toMatch(/hint: .*MODELS_MIRRORS/);
  });
});
