/**
 * Networks as they are, against real servers on 127.0.0.1: HTTP/1.0 servers that close every
 * connection (python3 -m http.server), tokens pasted with a newline, outages, stalls and trickles.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { publish } from '../src/publish.js';
import { startHttp10Server } from './support/http10-server.js';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { cleanTemps, cliEnv, hasStackTrace, randomish, runCli, sha256, sleep, tempDir, writeProject, writeTree } from './support/robustness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
let registry: string;
let data: Buffer;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  const base = await tempDir('xprim-network-');
  registry = join(base, 'registry');
  data = randomish(8 * MiB, 11);
  await writeTree(join(base, 'src'), { 'w.bin': data });
  await mkdir(registry, { recursive: true });
  await publish({ sourceDir: join(base, 'src'), registryDir: registry, model: 'test/w', version: 'v1', chunkSize: 256 * KiB });
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

/** A project installing test/w from `url`, with its own cache. */
async function project(url: string) {
  const dir = await tempDir();
  await writeProject(dir, url, { w: { model: 'test/w', version: 'v1' } });
  return { dir, env: cliEnv(join(dir, 'cache')) };
}

async function installedBytes(dir: string): Promise<string> {
  return sha256(await readFile(join(dir, 'models', 'w', 'w.bin')));
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
