/**
 * Resume after interruption: kill -9 of a real child mid-install, Range + If-Range across runs,
 * fallback to a full fetch on 200 (the object changed) and on 416, and Ctrl-C (exit 130, resumable).
 */
import { existsSync } from 'node:fs';
import { mkdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { publish } from '../src/ops/publish.js';
import { type Fault, type FaultRequest, type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { cleanTemps, cliEnv, randomish, runCli, sha256, sleep, startCli, tempDir, writeProject, writeTree } from './support/robustness.js';

const MiB = 1024 * 1024;
let registry: string;
let big: Buffer;
let one: Buffer;
let bigManifest: string;
let oneManifest: string;
const servers: RegistryServer[] = [];

async function serve(options: { bytesPerSecond?: number; fault?: (req: FaultRequest) => Fault | undefined } = {}): Promise<RegistryServer> {
  const server = await startRegistryServer({ root: registry, ...options });
  servers.push(server);
  return server;
}

beforeAll(async () => {
  const base = await tempDir('xprim-resume-');
  registry = join(base, 'registry');
  big = randomish(8 * MiB, 7);
  one = randomish(4 * MiB, 9);
  await writeTree(join(base, 'src-big'), { 'weights.bin': big });
  await writeTree(join(base, 'src-one'), { 'one.bin': one });
  await mkdir(registry, { recursive: true });
  bigManifest = (await publish({ sourceDir: join(base, 'src-big'), registryDir: registry, model: 'test/big', version: 'v1', chunkSize: MiB })).manifestHash;
  oneManifest = (await publish({ sourceDir: join(base, 'src-one'), registryDir: registry, model: 'test/one', version: 'v1', chunkSize: 4 * MiB })).manifestHash;
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(cleanTemps);

/** Completed 200 bodies for chunks (not the manifest) seen so far. */
function chunksServed(server: RegistryServer, manifest: string): number {
  return server.requests.filter((r) => r.path.startsWith('/data/') && r.path !== `/data/${manifest}` && r.status === 200 && !r.aborted).length;
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await sleep(20);
  }
}

const sentBytes = (server: RegistryServer): number => server.requests.reduce((sum, r) => sum + r.bytesSent, 0);

describe('kill -9 mid-install, then a rerun', () => {
  it('keeps the verified chunks: the rerun downloads only what was missing (1 MiB chunks)', async () => {
    const slow = await serve({ bytesPerSecond: 1.5 * MiB });
    const dir = await tempDir();
    await writeProject(dir, slow.url, { big: { model: 'test/big', version: 'v1' } });
    const env = cliEnv(join(dir, 'cache'), { MODELS_CONCURRENCY: '2' });
    const { child, done } = startCli(['install'], dir, env);
    await waitFor(() => chunksServed(slow, bigManifest) >= 3, 15_000);
    child.kill('SIGKILL');
    const first = await done;
    expect(first.signal).toBe('SIGKILL');
    const keptChunks = chunksServed(slow, bigManifest);
    // Nothing half-made is in place.
    expect(existsSync(join(dir, 'models', 'big', 'weights.bin'))).toBe(false);

    const fast = await serve();
    await slow.close();
    const second = await runCli(['install', '--json'], dir, { ...env, MODELS_MIRRORS: fast.url });
    expect(second.code, second.stderr).toBe(0);
    expect(sha256(await import('node:fs/promises').then((fs) => fs.readFile(join(dir, 'models', 'big', 'weights.bin'))))).toBe(sha256(big));
    const redownloaded = sentBytes(fast);
    const report = JSON.parse(second.stdout) as { bytesDownloaded: number };
    console.info(`kill -9 after ${keptChunks} of 8 chunks: rerun re-downloaded ${redownloaded} bytes (${(redownloaded / MiB).toFixed(2)} MiB) of 8 MiB`);
    // The rerun fetched at most what had not been verified yet, plus a couple of chunks in flight at the kill.
    expect(redownloaded).toBeLessThanOrEqual((8 - keptChunks + 2) * MiB + 64 * 1024);
    expect(redownloaded).toBeLessThan(8 * MiB - 2 * MiB);
    expect(report.bytesDownloaded).toBeLessThanOrEqual(redownloaded);
    // The verified chunks were never asked for again.
    const askedAgain = fast.requests.filter((r) => r.path.startsWith('/data/') && r.path !== `/data/${bigManifest}`).length;
    expect(askedAgain).toBeLessThanOrEqual(8 - keptChunks + 2);
  });

  /** Start an install of the one-chunk model against a 1 MiB/s server and kill -9 it after `ms` of body. */
  /** The furthest chunk position the resume journals under `cache` have recorded. */
  async function journaledBytes(cache: string): Promise<number> {
    const { readFile, readdir } = await import('node:fs/promises');
    const entries = await readdir(cache, { recursive: true }).catch(() => [] as string[]);
    let furthest = 0;
    for (const entry of entries.filter((e) => e.endsWith('journal'))) {
      const text = await readFile(join(cache, entry), 'utf8').catch(() => '');
      for (const line of text.split('\n')) {
        const [kind, , position] = line.split('\t');
        if (kind === 'prog') furthest = Math.max(furthest, Number(position) || 0);
      }
    }
    return furthest;
  }

  /** Kill -9 the install once its journal has recorded at least `bytes` of the chunk (not after a guessed delay: CI may be loaded). */
  async function killMidChunk(bytes: number) {
    const slow = await serve({ bytesPerSecond: 1 * MiB });
    const dir = await tempDir();
    await writeProject(dir, slow.url, { one: { model: 'test/one', version: 'v1' } });
    const env = cliEnv(join(dir, 'cache'));
    const { child, done } = startCli(['install'], dir, env);
    let recorded = 0;
    await waitFor(async () => (recorded = await journaledBytes(join(dir, 'cache'))) >= bytes, 20_000);
    expect(recorded).toBeLessThan(4 * MiB);
    child.kill('SIGKILL');
    await done;
    return { slow, dir, env };
  }

  it('resumes a half-downloaded chunk with Range + If-Range across runs', async () => {
    // Kill once at least 1 MiB of the one 4 MiB chunk has been written and recorded.
    const { slow, dir, env } = await killMidChunk(MiB);

    const fast = await serve();
    await slow.close();
    const second = await runCli(['install'], dir, { ...env, MODELS_MIRRORS: fast.url });
    expect(second.code, second.stderr).toBe(0);
    const data = await import('node:fs/promises').then((fs) => fs.readFile(join(dir, 'models', 'one', 'one.bin')));
    expect(sha256(data)).toBe(sha256(one));
    const chunkRequests = fast.requests.filter((r) => r.path !== `/data/${oneManifest}` && r.path.startsWith('/data/'));
    expect(chunkRequests).toHaveLength(1);
    const [resumed] = chunkRequests;
    expect(resumed?.range).toMatch(/^bytes=\d+-$/);
    expect(resumed?.ifRange).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(resumed?.status).toBe(206);
    const start = Number(/\d+/.exec(resumed?.range ?? '')?.[0]);
    expect(start).toBeGreaterThanOrEqual(MiB);
    expect(resumed?.bytesSent).toBe(4 * MiB - start);
    console.info(`Range resume: ${start} bytes kept, ${resumed?.bytesSent} re-sent`);
  });

  it('starts the chunk over when the object changed since (If-Range no longer matches: 200)', async () => {
    const { slow, dir, env } = await killMidChunk(MiB); // the journal records progress every MiB
    // Same bytes, new mtime: a new ETag and Last-Modified, as after a re-upload.
    const chunkPath = join(registry, 'data', sha256(one));
    const later = new Date(Date.now() + 5000);
    await utimes(chunkPath, later, later);

    const fast = await serve();
    await slow.close();
    const second = await runCli(['install'], dir, { ...env, MODELS_MIRRORS: fast.url });
    expect(second.code, second.stderr).toBe(0);
    const data = await import('node:fs/promises').then((fs) => fs.readFile(join(dir, 'models', 'one', 'one.bin')));
    expect(sha256(data)).toBe(sha256(one));
    const chunk = fast.requests.find((r) => r.path === `/data/${sha256(one)}`);
    expect(chunk?.range).toBeDefined();
    expect(chunk?.status).toBe(200);
    expect(chunk?.bytesSent).toBe(4 * MiB);
  });

  it('falls back to a full fetch when a resume answers 416', async () => {
    const server = await serve({
      fault: ({ path, attempt }) => {
        if (path !== `/data/${sha256(one)}`) return undefined;
        if (attempt === 1) return { kind: 'reset', afterBytes: 2 * MiB };
        if (attempt === 2) return { kind: 'status', status: 416 };
        return undefined;
      },
    });
    const dir = await tempDir();
    await writeProject(dir, server.url, { one: { model: 'test/one', version: 'v1' } });
    const result = await runCli(['install'], dir, cliEnv(join(dir, 'cache')));
    expect(result.code, result.stderr).toBe(0);
    const data = await import('node:fs/promises').then((fs) => fs.readFile(join(dir, 'models', 'one', 'one.bin')));
    expect(sha256(data)).toBe(sha256(one));
    const chunk = server.requests.filter((r) => r.path === `/data/${sha256(one)}`);
    expect(chunk.map((r) => r.status)).toEqual([200, 416, 200]);
    expect(chunk[1]?.range).toMatch(/^bytes=\d+-$/);
    expect(chunk[2]?.range).toBeUndefined();
  });
});

describe('Ctrl-C', () => {
  it('exits 130 within a second and leaves a resumable state', async () => {
    const slow = await serve({ bytesPerSecond: 1.5 * MiB });
    const dir = await tempDir();
    await writeProject(dir, slow.url, { big: { model: 'test/big', version: 'v1' } });
    const env = cliEnv(join(dir, 'cache'), { MODELS_CONCURRENCY: '2' });
    const { child, done } = startCli(['install'], dir, env);
    await waitFor(() => chunksServed(slow, bigManifest) >= 2, 15_000);
    const signalledAt = Date.now();
    child.kill('SIGINT');
    const first = await done;
    expect(first.code, first.stderr).toBe(130);
    expect(Date.now() - signalledAt).toBeLessThan(1500);
    expect(first.stderr).toMatch(/interrupted/);
    const kept = chunksServed(slow, bigManifest);
    expect(existsSync(join(dir, 'models', 'big'))).toBe(false);

    const fast = await serve();
    await slow.close();
    const started = Date.now();
    const second = await runCli(['install'], dir, { ...env, MODELS_MIRRORS: fast.url });
    expect(second.code, second.stderr).toBe(0);
    // The locks were released: no wait for a stale lock.
    expect(Date.now() - started).toBeLessThan(5000);
    const data = await import('node:fs/promises').then((fs) => fs.readFile(join(dir, 'models', 'big', 'weights.bin')));
    expect(sha256(data)).toBe(sha256(big));
    expect(sentBytes(fast)).toBeLessThanOrEqual((8 - kept + 2) * MiB + 64 * 1024);
  });
});
