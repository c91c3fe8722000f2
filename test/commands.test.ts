/**
 * list, info, path, verify and the global flags end to end, as a user runs them: the real CLI as a child process, the
 * conformance registry served over real HTTP (and from a folder), a temp cache per project.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFORMANCE, EXPECTED, bytes, runCli, tempDir, cliProject, yamlFor, flipByte } from './support/cli.js';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';

const REGISTRY = join(CONFORMANCE, 'registry');
const temps: string[] = [];
let server: RegistryServer;

beforeAll(async () => {
  server = await startRegistryServer({ root: REGISTRY });
});

afterAll(async () => {
  await server?.close();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

const project = (yaml: string) => cliProject(yaml, temps);

describe('global flags', () => {
  it('--version prints the package version and `help <command>` the command help', async () => {
    const dir = await tempDir();
    temps.push(dir);
    const pkg = JSON.parse(await readFile(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
    const version = await runCli(['--version'], { cwd: dir });
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);
    const help = await runCli(['help', 'verify'], { cwd: dir });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: models verify/);
    expect(help.stdout).toMatch(/re-hash every installed file/);
    const unknown = await runCli(['help', 'nope'], { cwd: dir });
    expect(unknown.code).toBe(2);
  });
});

describe('list, info, path, verify over HTTP', () => {
  it('report the installed models, their files, chunks and metadata', async () => {
    const p = await project(yamlFor(server.url, { tiny: { model: 'demo/tiny', version: 'latest' }, edge: { model: 'demo/edge', version: 'v1' } }));
    expect((await p.cli('install')).code).toBe(0);

    const list = await p.cli('list');
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+MODEL\s+VERSION\s+SIZE\s+STATUS\s+PATH$/);
    // Aligned columns: STATUS starts at the same offset on every line.
    const col = (lines[0] as string).indexOf('STATUS');
    for (const line of lines.slice(1)) expect(line.slice(col, col + 9)).toBe('installed');
    expect(list.stdout).toMatch(/tiny\s+demo\/tiny\s+latest \(v2\)\s+254 KiB\s+installed/);
    expect(list.stdout).not.toContain("\u001b["); // not a TTY: no colour

    const json = JSON.parse((await p.cli('list', '--json')).stdout) as { models: { name: string; status: string; path: string }[] };
    expect(json.models.map((m) => [m.name, m.status])).toEqual([
      ['tiny', 'installed'],
      ['edge', 'installed'],
    ]);

    const info = await p.cli('info', 'tiny');
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/version:\s+latest → v2/);
    expect(info.stdout).toMatch(/chunks:\s+4 × up to 64.0 KiB/);
    expect(info.stdout).toMatch(/metadata\.framework:\s+onnx/);
    expect(info.stdout).toMatch(/tokenizer\/vocab\.txt\s+48\.8 KiB/);
    const infoJson = JSON.parse((await p.cli('info', 'edge', '--json')).stdout) as { files: { path: string; size: number }[]; chunks: number; manifest: string };
    expect(infoJson.manifest).toBe(EXPECTED['demo/edge@v1']?.manifest);
    expect(infoJson.files.find((f) => f.path === 'a/b/c/d/deep.bin')?.size).toBe(196609);

    const versions = await p.cli('info', 'demo/tiny');
    expect(versions.stdout).toMatch(/latest → v2/);
    expect(versions.stdout).toMatch(/v1\s+5f7e12008194\s+framework=onnx/);
    const remoteV1 = JSON.parse((await p.cli('info', 'demo/tiny', 'v1', '--json')).stdout) as { totalSize: number; resolved: string };
    expect(remoteV1).toMatchObject({ resolved: 'v1', totalSize: 250025 });
    const missing = await p.cli('info', 'demo/nope', 'v1');
    expect(missing.code).toBe(3);

    const remote = JSON.parse((await p.cli('list', '--remote', '--json')).stdout) as { models: { model: string; version: string; aliasOf?: string }[] };
    expect(remote.models).toContainEqual(expect.objectContaining({ model: 'demo/tiny', version: 'latest', aliasOf: 'v2' }));
    expect(remote.models.map((m) => m.model)).toEqual(expect.arrayContaining(['demo/edge', 'demo/shared', 'demo/var']));

    const path = await p.cli('path', 'tiny');
    expect(path.code).toBe(0);
    expect(path.stdout.trim()).toBe(join(p.dir, 'models', 'tiny'));
    const verify = await p.cli('verify');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/tiny\s+demo\/tiny@v2\s+3\s+254 KiB\s+ok/);

    // Gone from disk: path and verify say "not installed" (exit 4).
    await rm(join(p.dir, 'models', 'edge'), { recursive: true });
    const gone = await p.cli('path', 'edge');
    expect(gone.code).toBe(4);
    expect(gone.stderr).toMatch(/edge is not installed/);
    expect(gone.stderr).toMatch(/hint: run `models install`/);
    expect((await p.cli('verify', 'edge')).code).toBe(4);
    expect((await p.cli('path', 'nosuch')).code).toBe(2);
  });
});

describe('verify', () => {
  it('exits 6 naming a file with one flipped byte (same size and mtime), 4 for a deleted file', async () => {
    const p = await project(yamlFor(server.url, { tiny: { model: 'demo/tiny', version: 'v1' } }));
    expect((await p.cli('install')).code).toBe(0);
    await flipByte(join(p.dir, 'models', 'tiny', 'model.bin'), 12345);

    // The fast check (size + mtime) cannot see it: that is why verify re-hashes.
    expect((await p.cli('list')).stdout).toMatch(/installed/);
    const bad = await p.cli('verify');
    expect(bad.code).toBe(6);
    expect(bad.stdout).toMatch(/tiny: model\.bin: corrupt \(sha256 [0-9a-f]{12}…, expected eab43d21a7f5…\)/);
    expect(bad.stdout).not.toMatch(/config\.json: /);
    expect(bad.stderr).toMatch(/hint: .*models install --verify/);
    const json = JSON.parse((await p.cli('verify', '--json')).stdout) as { exitCode: number; models: { files: { path: string; status: string; method: string }[] }[] };
    expect(json.exitCode).toBe(6);
    expect(json.models[0]?.files.map((f) => [f.path, f.status, f.method])).toEqual([
      ['model.bin', 'corrupt', 'sha256'],
      ['config.json', 'ok', 'sha256'],
      ['tokenizer/vocab.txt', 'ok', 'sha256'],
    ]);

    // Repaired by install --verify; then a deleted file is "missing": exit 4.
    expect((await p.cli('install', '--verify')).code).toBe(0);
    expect((await p.cli('verify')).code).toBe(0);
    await rm(join(p.dir, 'models', 'tiny', 'tokenizer', 'vocab.txt'));
    const missing = await p.cli('verify');
    expect(missing.code).toBe(4);
    expect(missing.stdout).toMatch(/tiny: tokenizer\/vocab\.txt: missing/);
  });

  it('checks a large file by its chunks on every core, and gives the verdict by its sha256 when a chunk fails', async () => {
    const source = await tempDir();
    temps.push(source);
    await mkdir(join(source, 'm'));
    // A small file first, so the large file's first chunk spans both.
    await writeFile(join(source, 'm', 'config.json'), '{"a":1}\n');
    await writeFile(join(source, 'm', 'weights.bin'), bytes(65 * 1024 * 1024, 7));
    const p = await project(yamlFor(join(source, 'reg'), { big: { model: 'test/big', version: 'v1' } }));
    expect((await p.cli('publish', join(source, 'm'), '--to', join(source, 'reg'), '--model', 'test/big', '--version', 'v1', '--chunk-size', '4MiB')).code).toBe(0);
    expect((await p.cli('install')).code).toBe(0);
    type Files = { exitCode: number; models: { files: { path: string; status: string; method: string; detail?: string }[] }[] };
    const methods = async () => {
      const out = JSON.parse((await p.cli('verify', '--json')).stdout) as Files;
      return { code: out.exitCode, files: Object.fromEntries(out.models[0]?.files.map((f) => [f.path, [f.status, f.method]]) ?? []) };
    };
    // Split over chunks where there is more than one core to hash on (CI has two).
    const multiCore = (await import('node:os')).availableParallelism() > 1;
    expect(await methods()).toEqual({ code: 0, files: { 'config.json': ['ok', 'sha256'], 'weights.bin': ['ok', multiCore ? 'chunks' : 'sha256'] } });

    // A flipped byte in the small file fails the chunk both share: the large file is then hashed whole, and is fine.
    await flipByte(join(p.dir, 'models', 'big', 'config.json'), 2);
    expect(await methods()).toEqual({ code: 6, files: { 'config.json': ['corrupt', 'sha256'], 'weights.bin': ['ok', 'sha256'] } });
    await flipByte(join(p.dir, 'models', 'big', 'config.json'), 2);
    await flipByte(join(p.dir, 'models', 'big', 'weights.bin'), 40 * 1024 * 1024);
    const bad = await p.cli('verify');
    expect(bad.code).toBe(6);
    expect(bad.stdout).toMatch(/big: weights\.bin: corrupt \(sha256 [0-9a-f]{12}…, expected [0-9a-f]{12}…\)/);
  });

  it('checks a reference manifest without per-file sha256 through its chunks, from a folder registry, offline', async () => {
    const p = await project(yamlFor(REGISTRY, { edge: { model: 'demo/edge', version: 'v1' } }));
    expect((await p.cli('install')).code).toBe(0);
    // No learned hashes anywhere: neither the install record nor the store's sidecar.
    await rm(join(p.dir, 'models', 'models.integrity.json'));
    await rm(join(p.cache, 'v1', 'manifests', `${EXPECTED['demo/edge@v1']?.manifest}.json`));
    const clean = JSON.parse((await p.cli('verify', '--offline', '--json')).stdout) as { exitCode: number; models: { files: { path: string; method: string; status: string }[] }[] };
    expect(clean.exitCode).toBe(0);
    expect(clean.models[0]?.files.find((f) => f.path === 'a/b/c/d/deep.bin')).toMatchObject({ method: 'chunks', status: 'ok' });

    await flipByte(join(p.dir, 'models', 'edge', 'a', 'b', 'c', 'd', 'deep.bin'), 100_000);
    const bad = await p.cli('verify', '--offline');
    expect(bad.code).toBe(6);
    expect(bad.stdout).toMatch(/edge: a\/b\/c\/d\/deep\.bin: corrupt \(chunk \d+ \([0-9a-f]{12}…\) does not match\)/);
    expect(bad.stdout).not.toMatch(/exact\.bin: corrupt/);
    expect(bad.stdout).not.toMatch(/last\.txt: corrupt/);
  });
});

