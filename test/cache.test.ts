/**
 * The cache commands end to end (the real CLI), and pruning's policy through the API: LRU order,
 * --dry-run, --older-than, shared files, partial downloads, other processes' locks.
 */
import { mkdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cacheInfo, parseDuration, pruneCache, verifyCache } from '../src/ops/cache.js';
import { install, verify } from '../src/index.js';
import { acquireLock } from '../src/store/locks.js';
import { loadProject } from '../src/project/project.js';
import { Store } from '../src/store/store.js';
import { CONFORMANCE, EXPECTED, cliProject, yamlFor, flipByte } from './support/cli.js';

const REGISTRY = join(CONFORMANCE, 'registry');
const temps: string[] = [];

afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

const project = (yaml: string) => cliProject(yaml, temps);

describe('cache commands', () => {
  it('info counts what install stored; verify removes a corrupt file; prune refuses without a TTY or -y', async () => {
    const p = await project(yamlFor(REGISTRY, { tiny: { model: 'demo/tiny', version: 'v1' }, edge: { model: 'demo/edge', version: 'v1' } }));
    expect((await p.cli('install')).code).toBe(0);
    const info = JSON.parse((await p.cli('cache', 'info', '--json')).stdout) as { location: string; files: { count: number }; chunks: number; manifests: { count: number } };
    expect(info.location).toBe(p.cache);
    expect(info.manifests.count).toBe(2);
    expect(info.chunks).toBe(4 + 5);
    expect(info.files.count).toBe(3 + 3); // edge's two empty files are not stored
    const text = await p.cli('cache', 'info');
    expect(text.stdout).toMatch(/location:\s+.*\.cache/);
    expect(text.stdout).toMatch(/chunks:\s+9/);

    // Corrupt a stored file through the install's hardlink.
    await flipByte(join(p.dir, 'models', 'tiny', 'config.json'), 3);
    const verified = await p.cli('cache', 'verify');
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/removed corrupt file 1df9304d151b/);
    expect(verified.stdout).toMatch(/removed corrupt chunk/);
    expect((await p.cli('cache', 'verify')).stdout).toMatch(/all good/);

    const refused = await p.cli('cache', 'prune', '--max-size', '1');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/no terminal to confirm/);
    expect(refused.stderr).toMatch(/hint: pass -y/);
    expect(JSON.parse((await p.cli('cache', 'info', '--json')).stdout).manifests.count).toBe(2);

    const dry = await p.cli('cache', 'prune', '--older-than', '0s', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/would remove 2 manifests, 5 files, \d+ chunk pointers/);
    const dryJson = JSON.parse((await p.cli('cache', 'prune', '--max-size', '1', '--dry-run', '--json')).stdout) as { dryRun: boolean; manifests: unknown[] };
    expect(dryJson).toMatchObject({ dryRun: true });
    expect(dryJson.manifests).toHaveLength(2);
    expect(JSON.parse((await p.cli('cache', 'info', '--json')).stdout).manifests.count).toBe(2);

    const pruned = await p.cli('cache', 'prune', '-y');
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toMatch(/removed 2 manifests/);
    expect(JSON.parse((await p.cli('cache', 'info', '--json')).stdout)).toMatchObject({ totalBytes: 0, chunks: 0 });
    // Installs hold their own links: pruning never breaks one.
    const v = await p.cli('verify', 'edge');
    expect(v.code).toBe(0);
  });
});


describe('pruneCache (API)', () => {
  const DAY = 86_400_000;
  const hashOf = (key: string) => EXPECTED[key]?.manifest as string;

  async function populated() {
    const p = await project(
      yamlFor(REGISTRY, {
        tiny: { model: 'demo/tiny', version: 'v1' },
        edge: { model: 'demo/edge', version: 'v1' },
        var: { model: 'demo/var', version: 'v1' },
        shared: { model: 'demo/shared', version: 'v1' },
      }),
    );
    await install(await loadProject(join(p.dir, 'models.yaml')), { cacheDir: p.cache, env: {} });
    const store = new Store(p.cache);
    const now = Date.now();
    // LRU: tiny (10 days), shared (8 days), edge (5 days), var (1 hour).
    const ages: [string, number][] = [
      ['demo/tiny@v1', 10 * DAY],
      ['demo/shared@v1', 8 * DAY],
      ['demo/edge@v1', 5 * DAY],
      ['demo/var@v1', 3_600_000],
    ];
    for (const [key, age] of ages) await utimes(store.manifestPath(hashOf(key)), (now - age) / 1000, (now - age) / 1000);
    return { p, store, now };
  }

  it('evicts least recently used first, --dry-run removes nothing, and shared files stay while a kept manifest needs them', async () => {
    const { p, store, now } = await populated();
    const before = await cacheInfo({ cacheDir: p.cache });

    const all = await pruneCache({ cacheDir: p.cache, maxSizeBytes: 0, dryRun: true, now });
    expect(all.manifests.map((m) => m.hash)).toEqual(['demo/tiny@v1', 'demo/shared@v1', 'demo/edge@v1', 'demo/var@v1'].map(hashOf));
    expect(await cacheInfo({ cacheDir: p.cache })).toEqual(before);

    // Just under the current size: only the least recently used manifest goes.
    const one = await pruneCache({ cacheDir: p.cache, maxSizeBytes: all.sizeBefore - 1, dryRun: true, now });
    expect(one.manifests.map((m) => m.hash)).toEqual([hashOf('demo/tiny@v1')]);
    // tiny's model.bin is also shared's copy-of-tiny-model.bin: it is not freed with tiny.
    const modelBin = EXPECTED['demo/tiny@v1']?.files['model.bin']?.sha256 as string;
    expect(one.manifests[0]?.bytes).toBeLessThan(250025 - 200000 + 4096);

    const older = await pruneCache({ cacheDir: p.cache, olderThanMs: 7 * DAY, now });
    expect(older.dryRun).toBe(false);
    expect(older.manifests.map((m) => m.hash)).toEqual([hashOf('demo/tiny@v1'), hashOf('demo/shared@v1')]);
    expect(await store.readManifest(hashOf('demo/tiny@v1'))).toBeUndefined();
    expect(await store.hasObject(modelBin, 200000)).toBe(false);
    expect(await store.readManifest(hashOf('demo/edge@v1'))).toBeDefined();
    const edgeDeep = EXPECTED['demo/edge@v1']?.files['a/b/c/d/deep.bin']?.sha256 as string;
    expect(await store.hasObject(edgeDeep, 196609)).toBe(true);
    const after = await cacheInfo({ cacheDir: p.cache });
    expect(after.manifests.count).toBe(2);
    expect(after.totalBytes).toBe(older.sizeAfter);
    // Every remaining chunk pointer still reads back its bytes.
    expect((await verifyCache({ cacheDir: p.cache })).removed).toEqual([]);
    // Installs are hardlinks: the pruned models are still intact.
    const report = await verify(join(p.dir, 'models.yaml'), { cacheDir: p.cache, offline: true });
    expect(report.exitCode).toBe(0);
  });

  it('a manifest read by an install or lock becomes the most recently used', async () => {
    const { p, store, now } = await populated();
    await store.readManifest(hashOf('demo/tiny@v1')); // what resolve/install do on every use
    const plan = await pruneCache({ cacheDir: p.cache, maxSizeBytes: 0, dryRun: true, now: now + 1000 });
    expect(plan.manifests.map((m) => m.hash).at(-1)).toBe(hashOf('demo/tiny@v1'));
    expect(plan.manifests[0]?.hash).toBe(hashOf('demo/shared@v1'));
  });

  it('removes stale partial downloads and waits for no one else holding a lock', async () => {
    const { p, store, now } = await populated();
    const stale = join(store.dir, 'partial', hashOf('demo/var@v1'));
    await mkdir(stale, { recursive: true });
    await writeFile(join(stale, 'journal'), 'done\t0\n');
    await utimes(join(stale, 'journal'), (now - 3 * DAY) / 1000, (now - 3 * DAY) / 1000);
    await utimes(stale, (now - 3 * DAY) / 1000, (now - 3 * DAY) / 1000);

    const release = await acquireLock(join(store.lockDir, hashOf('demo/var@v1')), 'a download', 1000);
    try {
      const error = await pruneCache({ cacheDir: p.cache, olderThanMs: DAY, lockTimeoutMs: 300, now }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'E_LOCK_TIMEOUT', exitCode: 7 });
      expect(await store.readManifest(hashOf('demo/tiny@v1'))).toBeDefined(); // nothing was removed
    } finally {
      await release();
    }
    const result = await pruneCache({ cacheDir: p.cache, olderThanMs: DAY, lockTimeoutMs: 300, now: now + 1000 });
    expect(result.partials).toBe(1);
    await expect(stat(stale)).rejects.toThrow();
  });

  it('parses durations', () => {
    expect(parseDuration('30d')).toBe(30 * DAY);
    expect(parseDuration('12h')).toBe(12 * 3_600_000);
    expect(parseDuration('90m')).toBe(90 * 60_000);
    expect(parseDuration('2w')).toBe(14 * DAY);
    expect(parseDuration('1.5d')).toBe(1.5 * DAY);
    expect(() => parseDuration('soon')).toThrow(/invalid duration/);
  });
});
