/**
 * Several `models install` processes at once: one shared cache (different projects), one shared
 * project, lock waits that time out (exit 7), and locks left behind by a killed process.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock } from '../src/store/locks.js';
import { publish } from '../src/ops/publish.js';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { CONFORMANCE_REGISTRY, cleanTemps, cliEnv, installedMatches, randomish, runCli, sha256, storeProblems, tempDir, writeProject, writeTree } from './support/robustness.js';

const MiB = 1024 * 1024;
let registry: string;
let big: Buffer;
let bigManifest: string;
const servers: RegistryServer[] = [];

beforeAll(async () => {
  const base = await tempDir('xprim-conc-');
  registry = join(base, 'registry');
  big = randomish(6 * MiB, 21);
  await writeTree(join(base, 'src'), { 'weights.bin': big, 'config.json': '{"layers": 12}\n' });
  await mkdir(registry, { recursive: true });
  bigManifest = (await publish({ sourceDir: join(base, 'src'), registryDir: registry, model: 'test/big', version: 'v1', chunkSize: MiB })).manifestHash;
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(cleanTemps);

async function checkBig(folder: string): Promise<void> {
  expect(sha256(await readFile(join(folder, 'weights.bin')))).toBe(sha256(big));
  expect(await readFile(join(folder, 'config.json'), 'utf8')).toBe('{"layers": 12}\n');
}

describe('four processes', () => {
  it('four installs into four projects sharing one cache: all exact, each chunk fetched once', async () => {
    const server = await startRegistryServer({ root: registry, bytesPerSecond: 8 * MiB });
    servers.push(server);
    const cache = join(await tempDir(), 'shared-cache');
    const dirs = await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const dir = await tempDir();
        await writeProject(dir, server.url, { big: { model: 'test/big', version: 'v1' } });
        return dir;
      }),
    );
    // Lock first (cheap), so that the four installs start their downloads at the same moment.
    for (const r of await Promise.all(dirs.map((dir) => runCli(['lock'], dir, cliEnv(cache))))) expect(r.code, r.stderr).toBe(0);
    server.reset();
    const results = await Promise.all(dirs.map((dir) => runCli(['install', '--frozen', '--json'], dir, cliEnv(cache, { MODELS_CONCURRENCY: '3' }))));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    console.info(`four processes, one cache: ${results.map((r) => r.durationMs).join(', ')} ms`);
    for (const dir of dirs) await checkBig(join(dir, 'models', 'big'));
    await server.settled();
    const chunkRequests = server.requests.filter((r) => r.path.startsWith('/data/') && r.path !== `/data/${bigManifest}`);
    // One process downloaded, the three others waited on the per-manifest lock and linked from the cache.
    expect(new Set(chunkRequests.map((r) => r.path)).size).toBe(chunkRequests.length);
    expect(chunkRequests.length).toBe(7);
    const downloaded = results.map((r) => (JSON.parse(r.stdout) as { bytesDownloaded: number }).bytesDownloaded);
    expect(downloaded.filter((b) => b > 0)).toHaveLength(1);
    // The shared cache is consistent afterwards.
    expect(await storeProblems(cache)).toEqual([]);
  });

  it('four installs of one project at once: one installs, the others find it done; verify passes', async () => {
    const server = await startRegistryServer({ root: CONFORMANCE_REGISTRY });
    servers.push(server);
    const dir = await tempDir();
    await writeProject(dir, server.url, { tiny: { model: 'demo/tiny', version: 'v1' }, edge: { model: 'demo/edge', version: 'v1' } });
    expect((await runCli(['lock'], dir, cliEnv(join(dir, 'cache')))).code).toBe(0);
    const lockBefore = await readFile(join(dir, 'models.lock'), 'utf8');
    const results = await Promise.all([0, 1, 2, 3].map((i) => runCli(['install', '--frozen'], dir, cliEnv(join(dir, `cache-${i % 2}`)))));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(await installedMatches(join(dir, 'models', 'tiny'), 'demo/tiny@v1')).toEqual([]);
    expect(await installedMatches(join(dir, 'models', 'edge'), 'demo/edge@v1')).toEqual([]);
    expect(await readFile(join(dir, 'models.lock'), 'utf8')).toBe(lockBefore);
    for (const cache of ['cache-0', 'cache-1']) expect(await storeProblems(join(dir, cache))).toEqual([]);
    // Every model was installed by exactly one of the four; the others found it up to date.
    const state = JSON.parse(await readFile(join(dir, 'models', 'models.integrity.json'), 'utf8').catch(() => '{}')) as { models?: Record<string, unknown> };
    expect(Object.keys(state.models ?? {}).sort()).toEqual(['edge', 'tiny']);
    // No staging or old folders left behind by the losers.
    const { readdir } = await import('node:fs/promises');
    expect((await readdir(join(dir, 'models'))).filter((n) => n.includes('xprim-staging') || n.includes('xprim-old'))).toEqual([]);
  });
});

describe('locks', () => {
  it('a lock wait that times out exits 7 with a hint naming MODELS_LOCK_TIMEOUT', async () => {
    const server = await startRegistryServer({ root: CONFORMANCE_REGISTRY });
    servers.push(server);
    const dir = await tempDir();
    await writeProject(dir, server.url, { tiny: { model: 'demo/tiny', version: 'v1' } });
    await mkdir(join(dir, 'models'), { recursive: true });
    const release = await acquireLock(join(dir, 'models', '.xprim-install'), 'the test', 1000);
    try {
      const started = Date.now();
      const result = await runCli(['install'], dir, cliEnv(join(dir, 'cache'), { MODELS_LOCK_TIMEOUT: '1', MODELS_TOKEN: 'tok-lock-secret' }));
      expect(result.code).toBe(7);
      expect(result.stderr).toMatch(/timed out after 1s waiting for the install root/);
      expect(result.stderr).toMatch(/hint: .*MODELS_LOCK_TIMEOUT/);
      expect(Date.now() - started).toBeLessThan(8000);
      // The lock holds no secret.
      const owner = await readFile(join(dir, 'models', '.xprim-install.lock', 'owner'), 'utf8');
      expect(owner).not.toContain('tok-lock-secret');
    } finally {
      await release();
    }
  });

  it('takes over a lock left by a killed process at once (dead owner)', async () => {
    const server = await startRegistryServer({ root: CONFORMANCE_REGISTRY });
    servers.push(server);
    const dir = await tempDir();
    await writeProject(dir, server.url, { tiny: { model: 'demo/tiny', version: 'v1' } });
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    const lockDir = join(dir, 'models', '.xprim-install.lock');
    await mkdir(lockDir, { recursive: true });
    await writeFile(join(lockDir, 'owner'), `${dead} ${hostname()}\n`);
    const started = Date.now();
    const result = await runCli(['install'], dir, cliEnv(join(dir, 'cache'), { MODELS_LOCK_TIMEOUT: '30' }));
    expect(result.code, result.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await installedMatches(join(dir, 'models', 'tiny'), 'demo/tiny@v1')).toEqual([]);
  });

  it('takes over a stale lock (not refreshed for longer than the stale period)', async () => {
    const server = await startRegistryServer({ root: CONFORMANCE_REGISTRY });
    servers.push(server);
    const dir = await tempDir();
    await writeProject(dir, server.url, { tiny: { model: 'demo/tiny', version: 'v1' } });
    const lockDir = join(dir, 'models', '.xprim-install.lock');
    await mkdir(lockDir, { recursive: true });
    await writeFile(join(lockDir, 'owner'), `1 some-other-host\n`);
    const old = new Date(Date.now() - 60_000);
    await utimes(lockDir, old, old);
    const result = await runCli(['install'], dir, cliEnv(join(dir, 'cache'), { MODELS_LOCK_TIMEOUT: '30' }));
    expect(result.code, result.stderr).toBe(0);
    expect(await installedMatches(join(dir, 'models', 'tiny'), 'demo/tiny@v1')).toEqual([]);
  });

  it('waits for a live lock holder instead of breaking its lock', async () => {
    const dir = await tempDir();
    const path = join(dir, 'thing');
    const release = await acquireLock(path, 'the thing', 1000);
    const started = Date.now();
    await expect(acquireLock(path, 'the thing', 600)).rejects.toMatchObject({ code: 'E_LOCK_TIMEOUT', exitCode: 7 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    await release();
    const again = await acquireLock(path, 'the thing', 600);
    await again();
  });
});
