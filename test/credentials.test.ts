/**
 * Credentials and transport: MODELS_TOKEN only to configured origins (never across a redirect to
 * another origin, never in output or files), HTTP(S)_PROXY / NO_PROXY, plain http only to loopback,
 * and --limit-rate.
 */
import { readFile } from 'node:fs/promises';
import { type IncomingMessage, type Server, createServer, request } from 'node:http';
import { type AddressInfo, type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { publish } from '../src/ops/publish.js';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { CONFORMANCE_REGISTRY, cleanTemps, cliEnv, installedMatches, randomish, runCli, sha256, snapshot, tempDir, writeProject, writeTree } from './support/robustness.js';

const TOKEN = 'xprim-test-token-7f3a9c';
const servers: RegistryServer[] = [];
const proxies: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(proxies.splice(0).map((p) => new Promise((resolve) => p.close(resolve).closeAllConnections())));
});
afterAll(cleanTemps);

async function serve(options: Parameters<typeof startRegistryServer>[0]): Promise<RegistryServer> {
  const s = await startRegistryServer(options);
  servers.push(s);
  return s;
}

/** Every file under `dir` (the project, the cache) must be free of the token. */
async function expectNoTokenIn(dir: string): Promise<void> {
  for (const [path, hash] of await snapshot(dir)) {
    if (hash === 'dir' || hash === 'symlink') continue;
    expect((await readFile(join(dir, path))).includes(TOKEN), path).toBe(false);
  }
}

describe('MODELS_TOKEN', () => {
  it('is sent as a bearer token to the configured registry', async () => {
    const server = await serve({ root: CONFORMANCE_REGISTRY, requireToken: TOKEN });
    const dir = await tempDir();
    await writeProject(dir, server.url, { tiny: { model: 'demo/tiny', version: 'v1' } });
    const result = await runCli(['install', '--verbose'], dir, cliEnv(join(dir, 'cache'), { MODELS_TOKEN: TOKEN }));
    expect(result.code, result.stderr).toBe(0);
    expect(server.requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(result.stdout + result.stderr).not.toContain(TOKEN);
    await expectNoTokenIn(dir);
  });

  it('does not follow a redirect to another origin: the second origin sees no Authorization', async () => {
    const other = await serve({ root: CONFORMANCE_REGISTRY });
    const first = await serve({
      root: CONFORMANCE_REGISTRY,
      requireToken: TOKEN,
      fault: ({ path }) => (path.startsWith('/data/') ? { kind: 'redirect', location: `${other.url}${path}` } : undefined),
    });
    const dir = await tempDir();
    await writeProject(dir, first.url, { tiny: { model: 'demo/tiny', version: 'v1' } });
    const result = await runCli(['install', '--verbose'], dir, cliEnv(join(dir, 'cache'), { MODELS_TOKEN: TOKEN }));
    expect(result.code, result.stderr).toBe(0);
    expect(await installedMatches(join(dir, 'models', 'tiny'), 'demo/tiny@v1')).toEqual([]);
    expect(other.requests.length).toBeGreaterThan(1);
    for (const r of other.requests) expect(r.authorization, r.path).toBeUndefined();
    expect(first.requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('is never printed, even in --verbose failures, and never written to the lock or the cache', async () => {
    const server = await serve({ root: CONFORMANCE_REGISTRY, requireToken: 'another-token' });
    const dir = await tempDir();
    await writeProject(dir, server.url, { tiny: { model: 'demo/tiny', version: 'v1' } });
    for (const args of [['install', '--verbose'], ['install', '--json'], ['lock', '--verbose']]) {
      const result = await runCli(args, dir, cliEnv(join(dir, 'cache'), { MODELS_TOKEN: TOKEN }));
      expect(result.code).toBe(9);
      expect(result.stderr).toMatch(/HTTP 401/);
      expect(result.stderr).toContain('MODELS_TOKEN');
      expect(result.stdout + result.stderr).not.toContain(TOKEN);
    }
    await expectNoTokenIn(dir);
  });

  it('a mirror on another configured origin gets it too; an unconfigured one never', async () => {
    const mirror = await serve({ root: CONFORMANCE_REGISTRY, requireToken: TOKEN });
    const down = await serve({ root: CONFORMANCE_REGISTRY, fault: () => ({ kind: 'status', status: 503 }) });
    const dir = await tempDir();
    await writeProject(dir, down.url, { tiny: { model: 'demo/tiny', version: 'v1' } }, { mirrors: [mirror.url] });
    const result = await runCli(['install'], dir, cliEnv(join(dir, 'cache'), { MODELS_TOKEN: TOKEN }));
    expect(result.code, result.stderr).toBe(0);
    expect(mirror.requests.length).toBeGreaterThan(0);
  });
});

describe('transport', () => {
  it('refuses a redirect to plain http on a non-loopback host', async () => {
    const server = await serve({ root: CONFORMANCE_REGISTRY, fault: ({ path }) => (path === '/models.json' ? { kind: 'redirect', location: 'http://registry.example.invalid/models.json' } : undefined) });
    const dir = await tempDir();
    await writeProject(dir, server.url, { tiny: { model: 'demo/tiny', version: 'v1' } });
    const result = await runCli(['install'], dir, cliEnv(join(dir, 'cache'), { MODELS_TOKEN: TOKEN }));
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/refusing redirect .* to http:\/\/registry\.example\.invalid/);
    expect(result.stderr).not.toContain(TOKEN);
  });

  it('refuses a plain-http registry that is not loopback (config error, exit 2)', async () => {
    const dir = await tempDir();
    await writeProject(dir, 'http://registry.example.com', { tiny: { model: 'demo/tiny', version: 'v1' } });
    const result = await runCli(['install'], dir, cliEnv(join(dir, 'cache')));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/models\.yaml:2:\d+/);
  });

  /** A forward proxy for plain http that records what it relays. */
  async function startProxy(): Promise<{ url: string; seen: { url: string; authorization?: string }[] }> {
    const seen: { url: string; authorization?: string }[] = [];
    const proxy = createServer((req: IncomingMessage, res) => {
      seen.push({ url: req.url ?? '', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
      const upstream = request(req.url ?? '', { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    // undici tunnels plain http through CONNECT as well: relay the bytes and record the target.
    proxy.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      seen.push({ url: `CONNECT ${req.url ?? ''}` });
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host as string, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    proxies.push(proxy);
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, seen };
  }

  it('goes through HTTP_PROXY when NO_PROXY does not exclude the host', async () => {
    const server = await serve({ root: CONFORMANCE_REGISTRY });
    const proxy = await startProxy();
    const dir = await tempDir();
    await writeProject(dir, server.url, { tiny: { model: 'demo/tiny', version: 'v1' } });
    const result = await runCli(['install'], dir, cliEnv(join(dir, 'cache'), { HTTP_PROXY: proxy.url, http_proxy: proxy.url }));
    expect(result.code, result.stderr).toBe(0);
    expect(await installedMatches(join(dir, 'models', 'tiny'), 'demo/tiny@v1')).toEqual([]);
    // Relayed either as absolute-form requests or through a CONNECT tunnel to the registry.
    const host = server.url.replace('http://', '');
    const relayed = proxy.seen.filter((s) => s.url === `CONNECT ${host}` || s.url.startsWith(server.url));
    expect(relayed.length).toBeGreaterThan(0);
    expect(relayed.length).toBe(proxy.seen.length);
  });

  it('bypasses the proxy for hosts in NO_PROXY', async () => {
    const server = await serve({ root: CONFORMANCE_REGISTRY });
    const proxy = await startProxy();
    const dir = await tempDir();
    await writeProject(dir, server.url, { tiny: { model: 'demo/tiny', version: 'v1' } });
    const result = await runCli(['install'], dir, cliEnv(join(dir, 'cache'), { HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' }));
    expect(result.code, result.stderr).toBe(0);
    expect(proxy.seen).toEqual([]);
    expect(server.requests.length).toBeGreaterThan(1);
  });
});

describe('--limit-rate', () => {
  let registry: string;
  beforeAll(async () => {
    const base = await tempDir();
    registry = join(base, 'registry');
    await writeTree(join(base, 'src'), { 'two.bin': randomish(2 * 1024 * 1024, 5) });
    await publish({ sourceDir: join(base, 'src'), registryDir: registry, model: 'test/two', version: 'v1', chunkSize: 256 * 1024 });
  });

  it('caps the total bandwidth: 2 MiB at 1 MiB/s takes at least ~1.5 s', async () => {
    const server = await serve({ root: registry });
    const dir = await tempDir();
    await writeProject(dir, server.url, { two: { model: 'test/two', version: 'v1' } });
    expect((await runCli(['lock'], dir, cliEnv(join(dir, 'cache')))).code).toBe(0);
    const result = await runCli(['install', '--frozen', '--limit-rate', '1MiB', '--json'], dir, cliEnv(join(dir, 'cache'), { MODELS_CONCURRENCY: '8' }));
    expect(result.code, result.stderr).toBe(0);
    const { durationMs } = JSON.parse(result.stdout) as { durationMs: number };
    expect(durationMs).toBeGreaterThanOrEqual(1500);
    expect(durationMs).toBeLessThan(6000);
    expect(sha256(await readFile(join(dir, 'models', 'two', 'two.bin')))).toBe(sha256(randomish(2 * 1024 * 1024, 5)));
  });
});
