/**
 * Progress a person can trust: after a resume, the bytes an interrupted run left count as done (but
 * not as speed), and "N to fetch" is the chunk bytes an update really fetches, not the changed files.
 */
import { readFile } from 'node:fs/promises';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type InstallEvent, install } from '../src/index.js';
import { plainProgress } from '../src/cli/progress.js';
import { createOutput } from '../src/cli/output.js';
import { publish } from '../src/ops/publish.js';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { cleanTemps, cliEnv, randomish, runCli, sha256, sleep, startCli, tempDir, writeProject, writeTree } from './support/robustness.js';

const MiB = 1024 * 1024;
const servers: RegistryServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(cleanTemps);

async function serve(root: string, bytesPerSecond?: number): Promise<RegistryServer> {
  const server = await startRegistryServer({ root, ...(bytesPerSecond ? { bytesPerSecond } : {}) });
  servers.push(server);
  return server;
}

describe('progress after a resume', () => {
  it('counts what the interrupted run left (mid-chunk included) as done, and reports it apart from this run', async () => {
    const base = await tempDir('xprim-progress-');
    const registry = join(base, 'registry');
    const data = randomish(8 * MiB, 21);
    await writeTree(join(base, 'src'), { 'w.bin': data });
    await mkdir(registry, { recursive: true });
    await publish({ sourceDir: join(base, 'src'), registryDir: registry, model: 'test/w', version: 'v1', chunkSize: 4 * MiB });
    const slow = await serve(registry, 1 * MiB);
    const dir = join(base, 'project');
    await writeProject(dir, slow.url, { w: { model: 'test/w', version: 'v1' } });
    const cache = join(dir, 'cache');
    // Kill -9 once more than 2 MiB of each 4 MiB chunk has been written and journaled.
    const { child, done } = startCli(['install', '--concurrency', '2'], dir, cliEnv(cache));
    const until = Date.now() + 15_000;
    while (!slow.requests.some((r) => r.path === '/models.json') && Date.now() < until) await sleep(20);
    await sleep(3000);
    child.kill('SIGKILL');
    await done;

    const fast = await serve(registry);
    const events: InstallEvent[] = [];
    const result = await install(join(dir, 'models.yaml'), { env: { ...cliEnv(cache), MODELS_MIRRORS: fast.url }, onEvent: (e) => events.push(e) });
    expect(sha256(await readFile(join(dir, 'models', 'w', 'w.bin')))).toBe(sha256(data));
    const start = events.find((e) => e.type === 'start');
    const progress = events.filter((e): e is Extract<InstallEvent, { type: 'progress' }> => e.type === 'progress');
    const last = progress[progress.length - 1];
    const network = fast.requests.filter((r) => r.path.startsWith('/data/') && r.range).reduce((sum, r) => sum + r.bytesSent, 0);
    console.info(`resumed ${last?.resumedBytes} bytes; ${network} bytes fetched with Range; done ${last?.doneBytes}`);
    expect(start).toMatchObject({ neededBytes: 8 * MiB });
    // Everything needed is done, and what was resumed is told apart from what this run fetched.
    expect(last?.doneBytes).toBe(8 * MiB);
    expect(last?.resumedBytes).toBeGreaterThan(2 * MiB);
    expect((last?.resumedBytes ?? 0) + (last?.networkBytes ?? 0)).toBe(8 * MiB);
    expect(result.bytesDownloaded).toBe(last?.networkBytes);
  });
});

describe('"N to fetch" on an update', () => {
  it('is the size of the chunks to fetch, not of the changed files', async () => {
    const base = await tempDir('xprim-progress-');
    const registry = join(base, 'registry');
    await mkdir(registry, { recursive: true });
    const big = randomish(4 * MiB, 31);
    // One 4 MiB chunk holds all of a.txt and the start of b.bin: changing a.txt refetches that chunk.
    await writeTree(join(base, 'v1'), { 'a.txt': 'version one\n', 'b.bin': big });
    await writeTree(join(base, 'v2'), { 'a.txt': 'version two\n', 'b.bin': big });
    await publish({ sourceDir: join(base, 'v1'), registryDir: registry, model: 'test/m', version: 'v1', chunkSize: 4 * MiB });
    await publish({ sourceDir: join(base, 'v2'), registryDir: registry, model: 'test/m', version: 'v2', chunkSize: 4 * MiB });
    const server = await serve(registry);
    const dir = await tempDir();
    const env = cliEnv(join(dir, 'cache'));
    await writeProject(dir, server.url, { m: { model: 'test/m', version: 'v1' } });
    expect((await runCli(['install'], dir, env)).code).toBe(0);
    await writeProject(dir, server.url, { m: { model: 'test/m', version: 'v2' } });
    server.reset();
    const update = await runCli(['install'], dir, env);
    expect(update.code, update.stderr).toBe(0);
    const fetched = server.requests.filter((r) => r.path.startsWith('/data/') && r.bytesSent > 1024 * 1024).reduce((sum, r) => sum + r.bytesSent, 0);
    expect(fetched).toBe(4 * MiB);
    expect(update.stdout).toContain('installing m test/m@v2 (4.0 MiB, 4.0 MiB to fetch)');
    await rm(join(dir, 'models'), { recursive: true, force: true });
  });
});

describe('the progress line', () => {
  it('leaves resumed bytes out of the speed (plain output, as in CI)', async () => {
    const lines: string[] = [];
    const out = { ...createOutput({}), info: (line: string) => void lines.push(line) };
    const view = plainProgress(out);
    view.onEvent({ type: 'start', name: 'w', model: 'test/w', resolved: 'v1', totalBytes: 8 * MiB, neededBytes: 8 * MiB });
    // An earlier run left 6 MiB; this one brought 1 MiB in about 5 s.
    view.onEvent({ type: 'progress', name: 'w', doneBytes: 6 * MiB, totalBytes: 0, networkBytes: 0, resumedBytes: 6 * MiB });
    await sleep(5_100);
    view.onEvent({ type: 'progress', name: 'w', doneBytes: 7 * MiB, totalBytes: 0, networkBytes: MiB, resumedBytes: 6 * MiB });
    const line = lines.find((l) => l.startsWith('  w: '));
    expect(line).toMatch(/^ {2}w: 7\.0 MiB\/8\.0 MiB 87% \d+(\.\d)? KiB\/s ETA \d+s$/);
    const speed = Number(/ ([\d.]+) KiB\/s/.exec(line ?? '')?.[1]);
    expect(speed).toBeGreaterThan(150);
    expect(speed).toBeLessThan(210);
  });
});
