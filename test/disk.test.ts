/**
 * Disk: the free-space check before downloading (exit 7 with the numbers), and ENOSPC in mid-run
 * (exit 7, no partial model promoted, cache consistent, a rerun completes). On a real tmpfs when this
 * machine lets us mount one (root in a container or CI VM), and always through a seam at the
 * file-system layer (a preload that makes file writes fail with ENOSPC) so the path is covered anywhere.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { cleanTemps, cliEnv, runCli, sha256, sleep, startCli, storeProblems, tempDir, writeProject , registryWithFile } from './support/robustness.js';

const MiB = 1024 * 1024;
let registry: string;
let blob: Buffer;
let server: RegistryServer;
let slow: RegistryServer;
let mountPoint: string | undefined;

beforeAll(async () => {
  let base: string;
  ({ base, registry, data: blob } = await registryWithFile('xprim-disk-', 'blob.bin', 3 * MiB, 33, [{ model: 'test/blob', chunkSize: 256 * 1024 }]));
  server = await startRegistryServer({ root: registry });
  slow = await startRegistryServer({ root: registry, bytesPerSecond: 1 * MiB });
  const point = join(base, 'tmpfs');
  await mkdir(point);
  // 24 MiB: room for the 3 MiB model plus the 16 MiB safety margin of the free-space check.
  if (process.platform === 'linux' && spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', point]).status === 0) mountPoint = point;
});

afterAll(async () => {
  await server?.close();
  await slow?.close();
  if (mountPoint) spawnSync('umount', ['-l', mountPoint]);
  await cleanTemps();
});

async function freeBytes(dir: string): Promise<number> {
  const info = await statfs(dir);
  return info.bavail * info.bsize;
}

async function leftovers(root: string): Promise<string[]> {
  return existsSync(root) ? (await readdir(root)).filter((n) => n.includes('xprim-staging') || n.includes('xprim-old')) : [];
}

describe('on a real tmpfs', () => {
  it('refuses before downloading when free space is short: exit 7 with the numbers', async (ctx) => {
    if (!mountPoint) return ctx.skip();
    const work = join(mountPoint, 'precheck');
    await writeProject(work, server.url, { blob: { model: 'test/blob', version: 'v1' } });
    const env = cliEnv(join(work, 'cache'));
    expect((await runCli(['lock'], work, env)).code).toBe(0);
    // Leave less than the model + margin.
    const filler = join(mountPoint, 'filler-1');
    await writeFile(filler, Buffer.alloc(Math.max(0, (await freeBytes(mountPoint)) - 12 * MiB)));
    server.reset();
    try {
      const result = await runCli(['install', '--frozen'], work, env);
      expect(result.code).toBe(7);
      expect(result.stderr).toMatch(/not enough free space in the (cache|install root) .*: [\d.]+ [KM]i?B free, 3(\.0)? MiB needed/);
      expect(result.stderr).toMatch(/^hint: /m);
      // Failed early: not one chunk was asked for.
      expect(server.requests.filter((r) => r.path.startsWith('/data/')).length).toBeLessThanOrEqual(1);
    } finally {
      await rm(filler, { force: true });
      await rm(work, { recursive: true, force: true });
    }
  });

  it('ENOSPC mid-run: exit 7, nothing promoted, cache consistent, and a rerun completes', async (ctx) => {
    if (!mountPoint) return ctx.skip();
    const work = join(mountPoint, 'midrun');
    await writeProject(work, slow.url, { blob: { model: 'test/blob', version: 'v1' } });
    const env = cliEnv(join(work, 'cache'), { MODELS_CONCURRENCY: '2' });
    expect((await runCli(['lock'], work, env)).code).toBe(0);
    slow.reset();
    const { done } = startCli(['install', '--frozen'], work, env);
    // Once chunks are flowing (the free-space check has passed), another writer fills the disk.
    while (!slow.requests.some((r) => r.path.startsWith('/data/') && r.status === 200)) await sleep(10);
    const filler = join(mountPoint, 'filler-2');
    await writeFile(filler, Buffer.alloc(Math.max(0, (await freeBytes(mountPoint)) - 64 * 1024))).catch(() => undefined);
    const result = await done;
    try {
      expect(result.code, result.stderr).toBe(7);
      expect(result.stderr).toMatch(/no space left on device/);
      expect(existsSync(join(work, 'models', 'blob', 'blob.bin'))).toBe(false);
      expect(await leftovers(join(work, 'models'))).toEqual([]);
      expect(await storeProblems(join(work, 'cache'), true)).toEqual([]);
    } finally {
      await rm(filler, { force: true });
    }
    const rerun = await runCli(['install', '--frozen'], work, env);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(sha256(await readFile(join(work, 'models', 'blob', 'blob.bin')))).toBe(sha256(blob));
    expect(await storeProblems(join(work, 'cache'))).toEqual([]);
    await rm(work, { recursive: true, force: true });
  });
});

describe('through a file-system seam (any machine)', () => {
  it('ENOSPC from file writes: exit 7, nothing promoted, cache consistent, a rerun completes', async () => {
    const work = await tempDir();
    const preload = join(work, 'enospc.mjs');
    // Every FileHandle write and writev fails with ENOSPC once ~1 MiB has been written by this process.
    await writeFile(
      preload,
      `import { open } from 'node:fs/promises';
import { devNull } from 'node:os';
const h = await open(devNull, 'r');
const proto = Object.getPrototypeOf(h);
await h.close();
const { write, writev } = proto;
let total = 0;
const take = (n) => {
  total += n;
  if (total > ${MiB}) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
};
proto.write = async function (...args) {
  take(typeof args[0] === 'string' ? Buffer.byteLength(args[0]) : (args[2] ?? args[0].byteLength));
  return write.apply(this, args);
};
proto.writev = async function (...args) {
  take(args[0].reduce((n, b) => n + b.byteLength, 0));
  return writev.apply(this, args);
};
`,
    );
    await writeProject(work, server.url, { blob: { model: 'test/blob', version: 'v1' } });
    const env = cliEnv(join(work, 'cache'));
    expect((await runCli(['lock'], work, env)).code).toBe(0);
    const result = await runCli(['install', '--frozen'], work, { ...env, MODELS_CONCURRENCY: '1', NODE_OPTIONS: `--import=${preload}` });
    expect(result.code, result.stderr).toBe(7);
    expect(result.stderr).toMatch(/no space left on device while trying to write .*/);
    expect(result.stderr).toMatch(/^hint: .*free some disk space/m);
    expect(existsSync(join(work, 'models', 'blob'))).toBe(false);
    expect(await leftovers(join(work, 'models'))).toEqual([]);
    expect(await storeProblems(join(work, 'cache'), true)).toEqual([]);

    const rerun = await runCli(['install', '--frozen', '--json'], work, env);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(sha256(await readFile(join(work, 'models', 'blob', 'blob.bin')))).toBe(sha256(blob));
    // The chunks verified before the failure were kept: the rerun fetched less than the whole model.
    expect((JSON.parse(rerun.stdout) as { bytesDownloaded: number }).bytesDownloaded).toBeLessThan(3 * MiB);
  });
});
