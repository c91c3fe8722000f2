/**
 * `models mirror`: a registry folder holding exactly the locked models, the air-gapped round trip
 * with no server at all (mirror → `install --frozen --offline` from MODELS_MIRRORS with a fresh
 * cache, while the configured registry is unreachable), and incrementality.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ModelsError, install, loadProject, lock, mirror } from '../src/index.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'models.js');
import { CONFORMANCE } from './support/cli.js';
const REGISTRY = join(CONFORMANCE, 'registry');
const UNREACHABLE = 'http://127.0.0.1:9/';

type Expected = Record<string, { manifest: string; files: Record<string, { sha256: string; size: number }> }>;
const expected = JSON.parse(await readFile(join(CONFORMANCE, 'expected.json'), 'utf8')) as Expected;

const temps: string[] = [];
afterEach(async () => {
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'xprim-mirror-'));
  temps.push(dir);
  return dir;
}

const sha = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

async function writeProject(dir: string, registry: string, models: Record<string, { model: string; version: string }>): Promise<void> {
  const lines = ['version: 1', `registry: ${registry}`, 'models:'];
  for (const [name, m] of Object.entries(models)) lines.push(`  ${name}:`, `    model: ${m.model}`, `    version: ${m.version}`);
  await writeFile(join(dir, 'models.yaml'), `${lines.join('\n')}\n`);
}

const MODELS = {
  tiny: { model: 'demo/tiny', version: 'latest' },
  edge: { model: 'demo/edge', version: 'v1' },
  var: { model: 'demo/var', version: 'v1' },
};

function run(args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', CI: '1', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Every installed file matches expected.json byte for byte (by sha256 and size). */
async function assertInstalled(root: string, models: Record<string, string>): Promise<void> {
  for (const [name, key] of Object.entries(models)) {
    const want = expected[key];
    expect(want, key).toBeDefined();
    for (const [path, file] of Object.entries(want!.files)) {
      const bytes = await readFile(join(root, name, path));
      expect({ path: `${name}/${path}`, size: bytes.length, sha256: sha(bytes) }).toEqual({ path: `${name}/${path}`, size: file.size, sha256: file.sha256 });
    }
  }
}

/** A project on an unreachable registry, locked from the mirror's own models.json (which checks the index too). */
async function airGappedProject(mirrorDir: string): Promise<{ dir: string; env: Record<string, string> }> {
  const dir = await tempDir();
  await writeProject(dir, UNREACHABLE, MODELS);
  const env = { MODELS_MIRRORS: pathToFileURL(mirrorDir).href, MODELS_CACHE_DIR: join(dir, 'cache') };
  await lock(await loadProject(join(dir, 'models.yaml')), { env: { ...process.env, ...env }, cacheDir: join(dir, 'lock-cache') });
  return { dir, env };
}

async function listData(mirrorDir: string): Promise<string[]> {
  return (await readdir(join(mirrorDir, 'data'))).filter((n) => !n.startsWith('.')).sort();
}

async function manifestObjectsIn(registry: string, hash: string): Promise<string[]> {
  const manifest = JSON.parse(await readFile(join(registry, 'data', hash), 'utf8')) as { chunks: string[] };
  return [hash, ...manifest.chunks];
}

async function manifestObjects(key: string): Promise<string[]> {
  const hash = expected[key]!.manifest;
  const manifest = JSON.parse(await readFile(join(REGISTRY, 'data', hash), 'utf8')) as { chunks: string[] };
  return [hash, ...manifest.chunks];
}

describe('models mirror', () => {
  it('round trip with no server: folder registry → mirror (CLI) → install --frozen --offline from MODELS_MIRRORS, fresh cache', async () => {
    const src = await tempDir();
    await writeProject(src, pathToFileURL(REGISTRY).href, MODELS);
    await lock(await loadProject(join(src, 'models.yaml')), { cacheDir: join(src, 'cache') });
    const out = join(src, 'mirror');
    const mirrored = await run(['mirror', '--out', out, '--json'], src, { MODELS_CACHE_DIR: join(src, 'cache') });
    expect(mirrored.stderr).toBe('');
    expect(mirrored.code).toBe(0);
    const result = JSON.parse(mirrored.stdout) as { models: { name: string }[]; chunksWritten: number; manifestsWritten: number; indexWritten: boolean };
    expect(result.models.map((m) => m.name)).toEqual(['edge', 'tiny', 'var']);
    expect(result.manifestsWritten).toBe(3);
    expect(result.indexWritten).toBe(true);

    // Exactly the locked models: the index subset (alias kept as an alias) and their objects, nothing else.
    const index = JSON.parse(await readFile(join(out, 'models.json'), 'utf8')) as Record<string, Record<string, Record<string, { hash: string; alias_of?: string }>>>;
    expect(Object.keys(index.demo!).sort()).toEqual(['edge', 'tiny', 'var']);
    expect(Object.keys(index.demo!.tiny!).sort()).toEqual(['latest', 'v2']);
    expect(index.demo!.tiny!.latest).toEqual({ hash: expected['demo/tiny@v2']!.manifest, alias_of: 'v2' });
    expect(index.demo!.tiny!.v2!.hash).toBe(expected['demo/tiny@v2']!.manifest);
    const wantObjects = new Set([...(await manifestObjects('demo/tiny@v2')), ...(await manifestObjects('demo/edge@v1')), ...(await manifestObjects('demo/var@v1'))]);
    expect(await listData(out)).toEqual([...wantObjects].sort());
    expect(result.chunksWritten).toBe(wantObjects.size - 3);
    for (const name of await listData(out)) expect(sha(await readFile(join(out, 'data', name)))).toBe(name);

    // The air-gapped machine: configured registry unreachable, only the mirror folder, a fresh cache.
    const { dir, env } = await airGappedProject(out);
    const installed = await run(['install', '--frozen', '--offline', '--json'], dir, env);
    expect(installed.stderr).toBe('');
    expect(installed.code).toBe(0);
    expect((JSON.parse(installed.stdout) as { installed: unknown[] }).installed).toHaveLength(3);
    await assertInstalled(join(dir, 'models'), { tiny: 'demo/tiny@v2', edge: 'demo/edge@v1', var: 'demo/var@v1' });
  });

  it('rebuilds every chunk from the cache when the registry is gone (offline), and that mirror installs byte-exactly', async () => {
    const src = await tempDir();
    const registry = join(src, 'registry');
    await cp(REGISTRY, registry, { recursive: true });
    await writeProject(src, './registry', MODELS);
    const cacheDir = join(src, 'cache');
    const project = await loadProject(join(src, 'models.yaml'));
    await install(project, { cacheDir });
    await rm(registry, { recursive: true });

    const out = join(src, 'mirror');
    const result = await mirror(project, { out, cacheDir, offline: true });
    const total = ['demo/tiny@v2', 'demo/edge@v1', 'demo/var@v1'].reduce((sum, key) => sum + Object.values(expected[key]!.files).reduce((s, f) => s + f.size, 0), 0);
    expect(result.bytesDownloaded).toBe(0);
    expect(result.bytesFromCache).toBe(total);
    for (const name of await listData(out)) expect(sha(await readFile(join(out, 'data', name)))).toBe(name);

    const { dir, env } = await airGappedProject(out);
    const installed = await run(['install', '--frozen', '--offline'], dir, env);
    expect(installed.stderr).toBe('');
    expect(installed.code).toBe(0);
    await assertInstalled(join(dir, 'models'), { tiny: 'demo/tiny@v2', edge: 'demo/edge@v1', var: 'demo/var@v1' });
  });

  it('is incremental: a second run writes nothing; after adding a model only its objects are written', async () => {
    const src = await tempDir();
    await writeProject(src, REGISTRY, { tiny: MODELS.tiny });
    const cacheDir = join(src, 'cache');
    const out = join(src, 'mirror');
    let project = await loadProject(join(src, 'models.yaml'));
    await lock(project, { cacheDir });
    const first = await mirror(project, { out, cacheDir });
    expect(first.chunksWritten).toBeGreaterThan(0);
    const indexBefore = await stat(join(out, 'models.json'));
    const dataBefore = await listData(out);

    const second = await mirror(project, { out, cacheDir });
    expect(second).toMatchObject({ chunksWritten: 0, manifestsWritten: 0, bytesWritten: 0, indexWritten: false, chunksSkipped: first.chunksWritten });
    expect((await stat(join(out, 'models.json'))).mtimeMs).toBe(indexBefore.mtimeMs);

    await writeProject(src, REGISTRY, { tiny: MODELS.tiny, shared: { model: 'demo/shared', version: 'v1' } });
    project = await loadProject(join(src, 'models.yaml'));
    await lock(project, { cacheDir });
    const third = await mirror(project, { out, cacheDir });
    const sharedObjects = await manifestObjects('demo/shared@v1');
    const added = (await listData(out)).filter((n) => !dataBefore.includes(n));
    expect(added.sort()).toEqual(sharedObjects.filter((n) => !dataBefore.includes(n)).sort());
    expect(third.manifestsWritten).toBe(1);
    expect(third.chunksWritten).toBe(added.length - 1);
    expect(third.models.find((m) => m.name === 'tiny')?.chunksWritten).toBe(0);
    expect(third.indexWritten).toBe(true);
    const index = JSON.parse(await readFile(join(out, 'models.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    expect(Object.keys(index.demo!).sort()).toEqual(['shared', 'tiny']);
  });

  it('repairs a damaged object, keeps foreign index entries, and refuses to change a mirrored version', async () => {
    const src = await tempDir();
    await writeProject(src, REGISTRY, { edge: MODELS.edge });
    const cacheDir = join(src, 'cache');
    const out = join(src, 'mirror');
    const project = await loadProject(join(src, 'models.yaml'));
    await lock(project, { cacheDir });
    await mirror(project, { out, cacheDir });

    const [manifest, firstChunk] = await manifestObjects('demo/edge@v1');
    await writeFile(join(out, 'data', firstChunk!), 'short');
    await writeFile(join(out, 'data', manifest!), '{}');
    const index = JSON.parse(await readFile(join(out, 'models.json'), 'utf8')) as Record<string, Record<string, Record<string, unknown>>>;
    index.other = { thing: { v9: { hash: 'a'.repeat(64) } } };
    await writeFile(join(out, 'models.json'), JSON.stringify(index));
    const repaired = await mirror(project, { out, cacheDir });
    expect(repaired.chunksWritten).toBe(1);
    expect(repaired.manifestsWritten).toBe(1);
    expect(sha(await readFile(join(out, 'data', firstChunk!)))).toBe(firstChunk);
    expect(sha(await readFile(join(out, 'data', manifest!)))).toBe(manifest);
    const merged = JSON.parse(await readFile(join(out, 'models.json'), 'utf8')) as Record<string, unknown>;
    expect(merged.other).toEqual({ thing: { v9: { hash: 'a'.repeat(64) } } });

    const tampered = JSON.parse(await readFile(join(out, 'models.json'), 'utf8')) as Record<string, Record<string, Record<string, { hash: string }>>>;
    tampered.demo!.edge!.v1!.hash = 'b'.repeat(64);
    await writeFile(join(out, 'models.json'), JSON.stringify(tampered));
    const error = await mirror(project, { out, cacheDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelsError);
    expect(error).toMatchObject({ code: 'E_USAGE', exitCode: 2 });
    expect((error as ModelsError).message).toContain('demo/edge v1');
    expect((error as ModelsError).hint).toBeTruthy();
  });

  it('names: mirrors only those; an unknown name or a missing lock is a typed error', async () => {
    const src = await tempDir();
    await writeProject(src, REGISTRY, { tiny: MODELS.tiny, var: MODELS.var });
    const cacheDir = join(src, 'cache');
    const out = join(src, 'mirror');
    let project = await loadProject(join(src, 'models.yaml'));
    const noLock = await mirror(project, { out, cacheDir }).catch((e: unknown) => e);
    expect(noLock).toMatchObject({ code: 'E_FROZEN', exitCode: 8 });
    await lock(project, { cacheDir });
    project = await loadProject(join(src, 'models.yaml'));
    const result = await mirror(project, { out, cacheDir, names: ['var'] });
    expect(result.models.map((m) => m.name)).toEqual(['var']);
    expect(await listData(out)).toEqual((await manifestObjects('demo/var@v1')).sort());
    const unknown = await mirror(project, { out, cacheDir, names: ['nope'] }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ code: 'E_USAGE', exitCode: 2 });
    expect((unknown as Error).message).toContain('nope');
  });

  it('a chunk whose bytes never match is refused (exit 6) and never lands in the mirror', async () => {
    const src = await tempDir();
    const hostile = join(CONFORMANCE, 'hostile', 'chunk-corrupt');
    await writeProject(src, hostile, { bad: { model: 'bad/chunk-corrupt', version: 'v1' } });
    const cacheDir = join(src, 'cache');
    const out = join(src, 'mirror');
    const project = await loadProject(join(src, 'models.yaml'));
    await lock(project, { cacheDir });
    const error = await mirror(project, { out, cacheDir, retry: { baseDelayMs: 1 } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_INTEGRITY', exitCode: 6 });
    // Good chunks may stay (verified; the next run skips them); the bad one, the manifest and the index do not.
    const manifest = JSON.parse(await readFile(join(hostile, 'models.json'), 'utf8')).bad['chunk-corrupt'].v1.hash as string;
    const landed = await readdir(join(out, 'data'));
    expect(landed).not.toContain(manifest);
    expect(landed.length).toBeLessThan((await manifestObjectsIn(hostile, manifest)).length - 1);
    for (const name of landed) expect(sha(await readFile(join(out, 'data', name)))).toBe(name);
    await expect(stat(join(out, 'models.json'))).rejects.toThrow();
  });
});
