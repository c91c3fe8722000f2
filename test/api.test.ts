/**
 * The programmatic API as an app uses it: install() with a progress callback and an AbortSignal,
 * aborted mid-download against a throttled HTTP registry, then resumed; typed results; typed errors.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type InstallEvent, type InstallResult, ModelsError, install, loadProject, lock, publish } from '../src/index.js';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { bytes } from './support/cli.js';

const temps: string[] = [];
const servers: RegistryServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'xprim-api-'));
  temps.push(dir);
  return dir;
}

const sha = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

const SIZE = 4 * 1024 * 1024;
const CHUNK = 128 * 1024;
const CONCURRENCY = 4;

describe('install(): abort and resume', () => {
  it('aborts with E_ABORTED (130), leaves no partial model, and a second install() resumes and re-downloads little', async () => {
    const dir = await tempDir();
    const source = join(dir, 'src');
    await mkdir(source);
    const content = bytes(SIZE, 7);
    await writeFile(join(source, 'weights.bin'), content);
    await writeFile(join(source, 'config.json'), '{"layers":4}\n');
    const registry = join(dir, 'registry');
    const published = await publish({ sourceDir: source, registryDir: registry, model: 'acme/big', version: 'v1', aliases: ['latest'], chunkSize: CHUNK });
    expect(published.chunks).toBe(SIZE / CHUNK + 1);

    // 1 MiB/s per response, 4 in flight: about a second for the whole model.
    const server = await startRegistryServer({ root: registry, bytesPerSecond: 1024 * 1024 });
    servers.push(server);
    await writeFile(join(dir, 'models.yaml'), `version: 1\nregistry: ${server.url}\nmodels:\n  big:\n    model: acme/big\n    version: latest\n    tags: [llm]\n`);
    const cacheDir = join(dir, 'cache');
    const project = await loadProject(join(dir, 'models.yaml'));
    await lock(project, { cacheDir });
    await server.settled();
    server.reset();

    const controller = new AbortController();
    const events: InstallEvent[] = [];
    let seen = 0;
    const aborted = await install(project, {
      frozen: true,
      cacheDir,
      concurrency: CONCURRENCY,
      signal: controller.signal,
      onEvent: (event) => {
        events.push(event);
        if (event.type === 'progress') {
          seen = event.networkBytes;
          if (event.networkBytes >= SIZE / 4) controller.abort();
        }
      },
    }).catch((error: unknown) => error);
    expect(aborted).toBeInstanceOf(ModelsError);
    expect(aborted).toMatchObject({ code: 'E_ABORTED', exitCode: 130 });
    expect((aborted as ModelsError).hint).toMatch(/again/);
    expect(seen).toBeGreaterThanOrEqual(SIZE / 4);
    expect(seen).toBeLessThan(SIZE);
    expect(events.find((e) => e.type === 'start')).toMatchObject({ type: 'start', name: 'big', model: 'acme/big', resolved: 'v1' });
    expect(events.some((e) => e.type === 'done')).toBe(false);

    // No partial model at the destination: no folder, no staging leftovers, no state record.
    const root = join(dir, 'models');
    const left = await readdir(root).catch(() => [] as string[]);
    expect(left.filter((n) => n.startsWith('big'))).toEqual([]);
    const state = await readFile(join(root, 'models.integrity.json'), 'utf8').catch(() => '{"models":{}}');
    expect(Object.keys((JSON.parse(state) as { models: object }).models)).toEqual([]);

    await server.settled();
    const firstBytes = server.requests.reduce((sum, r) => sum + r.bytesSent, 0);
    server.reset();

    const result: InstallResult = await install(project, { frozen: true, cacheDir, concurrency: CONCURRENCY });
    await server.settled();
    const secondBytes = server.requests.reduce((sum, r) => sum + r.bytesSent, 0);
    // Only what was not verified before is fetched again: at most the chunks that were in flight.
    expect(secondBytes).toBeLessThan(SIZE - SIZE / 4 + CONCURRENCY * CHUNK);
    expect(firstBytes + secondBytes - SIZE).toBeLessThanOrEqual(CONCURRENCY * CHUNK + 64);
    expect(await readFile(join(root, 'big', 'weights.bin')).then(sha)).toBe(sha(content));
    expect(await readFile(join(root, 'big', 'config.json'), 'utf8')).toBe('{"layers":4}\n');

    // Typed result.
    expect(result.installed).toHaveLength(1);
    expect(result.skipped).toEqual([]);
    expect(result.removed).toEqual([]);
    expect(result.root).toBe(root);
    expect(result.lockWritten).toBe(false);
    const model = result.installed[0]!;
    expect(model).toMatchObject({ name: 'big', model: 'acme/big', version: 'latest', resolved: 'v1', manifest: published.manifestHash, path: join(root, 'big') });
    expect(model.size).toBe(SIZE + 13);
    expect(model.bytesDownloaded + model.bytesFromCache).toBe(model.size);
    expect(model.bytesFromCache).toBeGreaterThan(0); // the chunks verified before the abort
    expect(model.source).toBe('mixed');
    expect(result.bytesDownloaded).toBe(model.bytesDownloaded);

    // Everything in place: skipped, and no request at all.
    server.reset();
    const again = await install(project, { frozen: true, cacheDir });
    expect(again.installed).toEqual([]);
    expect(again.skipped.map((m) => [m.name, m.source])).toEqual([['big', 'up-to-date']]);
    expect(again.bytesDownloaded).toBe(0);
    await server.settled();
    expect(server.requests).toEqual([]);
  });
});

describe('typed errors', () => {
  it('a model missing from the registry is E_NOT_FOUND (exit 3) with a hint, from lock() and install()', async () => {
    const dir = await tempDir();
    const registry = join(dir, 'registry');
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'src', 'a.bin'), 'a');
    await publish({ sourceDir: join(dir, 'src'), registryDir: registry, model: 'acme/there', version: 'v1' });
    await writeFile(join(dir, 'models.yaml'), `version: 1\nregistry: ./registry\nmodels:\n  gone:\n    model: acme/missing\n    version: v1\n`);
    const project = await loadProject(join(dir, 'models.yaml'));
    for (const call of [() => lock(project, { cacheDir: join(dir, 'cache') }), () => install(project, { cacheDir: join(dir, 'cache') })]) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelsError);
      const e = error as ModelsError;
      expect(e.code).toBe('E_NOT_FOUND');
      expect(e.exitCode).toBe(3);
      expect(e.message).toContain('acme/missing');
      expect(e.hint).toBeTruthy();
    }
    const frozen = await install(project, { frozen: true, cacheDir: join(dir, 'cache') }).catch((e: unknown) => e);
    expect(frozen).toMatchObject({ code: 'E_FROZEN', exitCode: 8 });
  });
});
