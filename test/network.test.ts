/**
 * Networks as they are, against real servers on 127.0.0.1: HTTP/1.0 servers that close every
 * connection (python3 -m http.server), tokens pasted with a newline, outages, stalls and trickles.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHttp10Server } from './support/http10-server.js';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { cleanTemps, cliEnv, hasStackTrace, runCli, sha256, sleep, startCli, tempDir, writeProject , registryWithFile } from './support/robustness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
let registry: string;
let data: Buffer;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  ({ registry, data } = await registryWithFile('xprim-network-', 'w.bin', 8 * MiB, 11, [
    { model: 'test/w', chunkSize: 256 * KiB },
    { model: 'test/big', chunkSize: 4 * MiB },
  ]));
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(cleanTemps);

async function serve(options: Omit<Parameters<typeof startRegistryServer>[0], 'root'> = {}): Promise<RegistryServer> {
  const server = await startRegistryServer({ root: registry, ...options });
  cleanups.push(() => server.close());
  return server;
}

/** A project installing test/w (256 KiB chunks; test/big: 4 MiB chunks) from `url`, with its own cache. */
async function project(url: string, model = 'test/w') {
  const dir = await tempDir();
  await writeProject(dir, url, { w: { model, version: 'v1' } });
  return { dir, env: cliEnv(join(dir, 'cache')) };
}

async function installedBytes(dir: string): Promise<string> {
  return sha256(await readFile(join(dir, 'models', 'w', 'w.bin')));
}

/** Run the CLI, killing it (SIGKILL, exit code null) if it takes longer than `ms`: a hang fails the test. */
async function runWithin(args: string[], cwd: string, env: NodeJS.ProcessEnv, ms: number) {
  const { child, done } = startCli(args, cwd, env);
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/models.json`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${port}`);
    await sleep(100);
  }
}

// Skipped only outside CI: .ci/run installs python3.
const hasPython = spawnSync('python3', ['--version']).status === 0 || Boolean(process.env.CI);

describe('--limit-rate against HTTP/1.0 servers without keep-alive', () => {
  it('installs from a server that closes the connection after each response (exit 0, exact bytes)', async () => {
    const server = await startHttp10Server(registry);
    cleanups.push(() => server.close());
    const { dir, env } = await project(server.url);
    const result = await runCli(['install', '--limit-rate', '4MiB'], dir, env);
    expect(result.code, result.stderr).toBe(0);
    expect(hasStackTrace(result.stderr)).toBe(false);
    expect(await installedBytes(dir)).toBe(sha256(data));
    expect(server.paths.filter((p) => p.startsWith('/data/')).length).toBeGreaterThanOrEqual(32);
  });

  it.runIf(hasPython)('installs from a real python3 -m http.server', async () => {
    const port = await freePort();
    const python = spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', registry], { stdio: 'ignore' });
    cleanups.push(() => void python.kill());
    await waitForPort(port, 10_000);
    const { dir, env } = await project(`http://127.0.0.1:${port}`);
    const result = await runCli(['install', '--limit-rate', '4MiB'], dir, env);
    expect(result.code, result.stderr).toBe(0);
    expect(await installedBytes(dir)).toBe(sha256(data));
  });
});

describe('MODELS_TOKEN pasted from a file', () => {
  it('is trimmed: a trailing newline is not part of the token', async () => {
    const server = await serve({ requireToken: 's3cret-token' });
    const { dir, env } = await project(server.url);
    const result = await runCli(['install'], dir, { ...env, MODELS_TOKEN: 's3cret-token\n' });
    expect(result.code, result.stderr).toBe(0);
    expect(server.requests.every((r) => r.authorization === 'Bearer s3cret-token')).toBe(true);
  });

  it('is refused with exit 2 naming MODELS_TOKEN (not the value) when it has a line break inside', async () => {
    const server = await serve({ requireToken: 's3cret-token' });
    const { dir, env } = await project(server.url);
    const result = await runCli(['install'], dir, { ...env, MODELS_TOKEN: 's3cret\ntoken' });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(/error: MODELS_TOKEN contains/);
    expect(result.stderr + result.stdout).not.toContain('s3cret');
    expect(server.requests).toHaveLength(0);
  });
});

/** A server on 127.0.0.1 that accepts connections and does what `onRequest` says with the raw socket. */
async function rawServer(onConnection: (socket: import('node:net').Socket) => void): Promise<string> {
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

describe('retry budget', () => {
  it('survives a 15 s outage of the only registry, keeping the chunks verified before it', async () => {
    const first = await serve({ bytesPerSecond: 2 * MiB });
    const port = Number(new URL(first.url).port);
    const { dir, env } = await project(first.url);
    const { done } = startCli(['install'], dir, env);
    const chunkDone = () => first.requests.filter((r) => r.path.startsWith('/data/') && r.status === 200 && !r.aborted).length;
    const until = Date.now() + 20_000;
    while (chunkDone() < 6 && Date.now() < until) await sleep(50);
    await first.close();
    const before = chunkDone() - 1; // minus the manifest
    const outage = Date.now();
    await sleep(15_000);
    const second = await startRegistryServer({ root: registry, port });
    cleanups.push(() => second.close());
    const result = await done;
    console.info(`outage of ${((Date.now() - outage) / 1000).toFixed(1)} s after ${before} chunks; ${second.count('/data/')} data requests after it`);
    expect(result.code, result.stderr).toBe(0);
    expect(await installedBytes(dir)).toBe(sha256(data));
    // What was verified before the outage was not fetched again (a few chunks were in flight).
    expect(second.count('/data/')).toBeLessThanOrEqual(32 - before + 8);
  }, 90_000);

  it('fails at once on a Retry-After beyond the budget (429, Retry-After: 86400), naming the URL', async () => {
    const server = await serve({ fault: ({ path }) => (path === '/models.json' ? { kind: 'status', status: 429, retryAfter: '86400' } : undefined) });
    const { dir, env } = await project(server.url);
    const started = Date.now();
    const result = await runWithin(['install'], dir, env, 30_000);
    expect(result.code, result.stderr).toBe(5);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(result.stderr).toContain(`HTTP 429 from ${server.url}/models.json asks to retry after 86400 s, beyond the retry budget of 60 s`);
    expect(result.stderr).toMatch(/hint: .*MODELS_RETRY_BUDGET/);
    expect(server.count('/models.json')).toBe(1);
  });

  it('gives up when MODELS_RETRY_BUDGET is spent, saying how long it tried', async () => {
    const server = await serve({ fault: ({ path }) => (path === '/models.json' ? { kind: 'status', status: 503 } : undefined) });
    const { dir, env } = await project(server.url);
    const started = Date.now();
    const result = await runWithin(['install'], dir, { ...env, MODELS_RETRY_BUDGET: '2' }, 30_000);
    const took = Date.now() - started;
    expect(result.code, result.stderr).toBe(5);
    expect(result.stderr).toMatch(new RegExp(`HTTP 503 from ${server.url}/models.json \\(gave up after \\d+ attempts in [\\d.]+ s\\)`));
    expect(server.count('/models.json')).toBeGreaterThan(2);
    expect(took).toBeLessThan(10_000);
  });
});

describe('stalled servers', () => {
  const fastLimits = { MODELS_HEADERS_TIMEOUT: '0.5', MODELS_SPEED_LIMIT: '100', MODELS_SPEED_TIME: '1', MODELS_RETRY_BUDGET: '3' };

  it('a server that never answers: `models lock` ends in exit 5 naming the URL, within the budget', async () => {
    let connections = 0;
    const url = await rawServer(() => void connections++);
    const { dir, env } = await project(url);
    const started = Date.now();
    const result = await runWithin(['lock'], dir, { ...env, ...fastLimits }, 30_000);
    expect(result.code, result.stderr).toBe(5);
    expect(result.stderr).toContain(`${url}/models.json`);
    expect(result.stderr).toMatch(/UND_ERR_HEADERS_TIMEOUT|Headers Timeout/i);
    expect(connections).toBeGreaterThan(1);
    expect(Date.now() - started).toBeLessThan(12_000);
  });

  it('a server that trickles 1 byte a second is dropped by the low-speed limit, retried, then exit 5 naming the URL', async () => {
    let requests = 0;
    const url = await rawServer((socket) => {
      socket.once('data', () => {
        requests++;
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n');
        const timer = setInterval(() => socket.write('{'), 1000);
        socket.on('close', () => clearInterval(timer));
      });
    });
    const { dir, env } = await project(url);
    const started = Date.now();
    const result = await runWithin(['install'], dir, { ...env, ...fastLimits }, 30_000);
    expect(result.code, result.stderr).toBe(5);
    expect(result.stderr).toContain(`${url}/models.json`);
    expect(result.stderr).toMatch(/below the low-speed limit of 100 bytes\/s/);
    expect(requests).toBeGreaterThan(1);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('a transfer we slow down ourselves (--limit-rate) is not taken for a stalled server', async () => {
    const server = await serve();
    // 4 MiB chunks: the read-ahead fills, so we pause the body ourselves for most of each chunk.
    const { dir, env } = await project(server.url, 'test/big');
    const result = await runCli(['install', '--limit-rate', '2MiB'], dir, { ...env, MODELS_SPEED_LIMIT: String(3 * MiB), MODELS_SPEED_TIME: '1', MODELS_RETRIES: '1' });
    expect(result.code, result.stderr).toBe(0);
    expect(await installedBytes(dir)).toBe(sha256(data));
  });
});

describe('--verbose', () => {
  const TOKEN = 'verbose-secret-token-123';

  it('logs every request, retry and cache hit on stderr, and never the token', async () => {
    const server = await serve({ requireToken: TOKEN, fault: ({ path, attempt }) => (path === '/models.json' && attempt === 1 ? { kind: 'status', status: 503 } : undefined) });
    const { dir, env } = await project(server.url);
    const withToken = { ...env, MODELS_TOKEN: TOKEN };
    const first = await runCli(['install', '--verbose'], dir, withToken);
    expect(first.code, first.stderr).toBe(0);
    const lines = first.stderr.split('\n').filter((l) => l.startsWith('debug: '));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^debug: GET ${server.url}/models.json → 503 in \\d+ ms$`)));
    expect(lines).toContainEqual(expect.stringMatching(/^debug: retry 1 of registry index of .* in \d+ ms \(.* of the 60 s budget spent\): HTTP 503 from /));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^debug: GET ${server.url}/models.json → 200, \\d+ bytes in \\d+ ms$`)));
    // One line per chunk request, with its size.
    const chunkLines = lines.filter((l) => new RegExp(`GET ${server.url}/data/[0-9a-f]{64} → 200, 262144 bytes in \\d+ ms`).test(l));
    expect(chunkLines.length).toBe(32);
    expect(first.stderr + first.stdout).not.toContain(TOKEN);

    // Second install into a fresh root: everything comes from the cache, and says so.
    await import('node:fs/promises').then((fs) => fs.rm(join(dir, 'models'), { recursive: true }));
    const second = await runCli(['install', '--verbose'], dir, withToken);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/^debug: cache hit: manifest [0-9a-f]{12} of w/m);
    expect(second.stderr).toMatch(/^debug: cache hit: w: w\.bin \(8388608 bytes\) is in the store$/m);
    expect(second.stderr + second.stdout).not.toContain(TOKEN);
  });

  it('logs no query string (a presigned redirect carries its signature there)', async () => {
    const server = await serve({ fault: ({ path, attempt }) => (path === '/models.json' && attempt === 1 ? { kind: 'redirect', location: '/models.json?X-Amz-Signature=presigned-secret' } : undefined) });
    const { dir, env } = await project(server.url);
    const result = await runCli(['lock', '--verbose'], dir, env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`debug: GET ${server.url}/models.json → 302 (to ${server.url}/models.json?…)`);
    expect(result.stderr).not.toContain('presigned-secret');
  });

  it('logs a lock wait, naming the lock and its holder', async () => {
    const server = await serve();
    const { dir, env } = await project(server.url);
    const lockDir = join(dir, 'models', '.xprim-install.lock');
    await mkdir(lockDir, { recursive: true });
    const { hostname } = await import('node:os');
    // Held by this (live) test process.
    await import('node:fs/promises').then((fs) => fs.writeFile(join(lockDir, 'owner'), `${process.pid} ${hostname()}\n`));
    const result = await runCli(['install', '--verbose'], dir, { ...env, MODELS_LOCK_TIMEOUT: '1' });
    expect(result.code, result.stderr).toBe(7);
    expect(result.stderr).toContain(`debug: lock wait: the install root ${join(dir, 'models')} is locked (${lockDir}, held by pid ${process.pid} on ${hostname()}); waiting up to 1 s`);
  });
});
