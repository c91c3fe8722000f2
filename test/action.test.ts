/**
 * The GitHub Action, end to end: the committed bundle (dist/index.js) runs as a child process with
 * the environment a runner gives it (INPUT_*, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_WORKSPACE,
 * RUNNER_TEMP), against local registries. Nothing is rebuilt here: CI's check-dist step guarantees
 * dist/ matches the sources.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { publish } from '../src/ops/publish.js';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';

const REPO = join(import.meta.dirname, '..');
const BUNDLE = join(REPO, 'dist', 'index.js');
import { CONFORMANCE } from './support/cli.js';
const EXPECTED = JSON.parse(await readFile(join(CONFORMANCE, 'expected.json'), 'utf8')) as Record<string, { manifest: string; files: Record<string, { sha256: string; size: number }> }>;
const TOKEN = 'tok-5f2a9c-secret';

interface ActionRun {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
}

let base: string;
let registryDir: string;
let server: RegistryServer;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'xprim-action-'));
  registryDir = join(base, 'registry');
  await cp(join(CONFORMANCE, 'registry'), registryDir, { recursive: true });
  server = await startRegistryServer({ root: registryDir, requireToken: TOKEN });
});

afterAll(async () => {
  await server?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

let counter = 0;
/** A fresh GITHUB_WORKSPACE (+ RUNNER_TEMP) holding `files`. */
async function workspace(files: Record<string, string>): Promise<{ ws: string; runnerTemp: string }> {
  const dir = join(base, `run-${++counter}`);
  const ws = join(dir, 'ws');
  const runnerTemp = join(dir, 'runner-temp');
  await mkdir(runnerTemp, { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(ws, path, '..'), { recursive: true });
    await writeFile(join(ws, path), text);
  }
  return { ws, runnerTemp };
}

/** The GITHUB_OUTPUT file format: `name<<delimiter`, the value, the delimiter. */
function parseOutputs(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  for (const m of text.matchAll(/^([^\n<]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) outputs[m[1] as string] = m[3] as string;
  return outputs;
}

async function runAction(ws: string, runnerTemp: string, inputs: Record<string, string>, extraEnv: NodeJS.ProcessEnv = {}): Promise<ActionRun> {
  const outputFile = join(runnerTemp, `output-${++counter}`);
  const summaryFile = join(runnerTemp, `summary-${counter}`);
  await writeFile(outputFile, '');
  await writeFile(summaryFile, '');
  // Only what a runner would set: nothing from this machine's GitHub/cache/models environment leaks in.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(GITHUB_|INPUT_|RUNNER_|ACTIONS_|MODELS_)/.test(k)));
  Object.assign(env, {
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    GITHUB_WORKSPACE: ws,
    RUNNER_TEMP: runnerTemp,
    RUNNER_OS: 'Linux',
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v])),
    ...extraEnv,
  });
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BUNDLE], { cwd: ws, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  const result = { code, stdout, stderr, outputs: parseOutputs(await readFile(outputFile, 'utf8')), summary: await readFile(summaryFile, 'utf8') };
  // Never a stack trace, whatever happened.
  expect(`${stdout}\n${stderr}`).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  return result;
}

/**
 * The Actions cache service (v1 protocol, the one @actions/cache speaks to ACTIONS_CACHE_URL): lookup by
 * exact key then by prefix, reserve, chunked upload, commit, archive download. In memory.
 */
interface CacheService {
  url: string;
  entries: Map<string, { version: string; data: Buffer }>;
  log: string[];
  close(): Promise<void>;
}

async function startCacheService(): Promise<CacheService> {
  const entries = new Map<string, { version: string; data: Buffer }>();
  const pending = new Map<number, { key: string; version: string; parts: Array<{ start: number; data: Buffer }> }>();
  const log: string[] = [];
  let nextId = 1;
  let url = '';
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const u = new URL(req.url ?? '/', 'http://x');
      const json = (status: number, value?: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(value === undefined ? undefined : JSON.stringify(value));
      };
      const id = Number(/\/caches\/(\d+)$/.exec(u.pathname)?.[1]);
      if (req.method === 'GET' && u.pathname === '/_apis/artifactcache/cache') {
        const keys = (u.searchParams.get('keys') ?? '').split(',');
        const version = u.searchParams.get('version');
        log.push(`lookup ${keys.join(',')}`);
        for (const key of keys) {
          const exact = entries.get(key);
          const found = exact?.version === version ? key : [...entries.keys()].reverse().find((k) => k.startsWith(key) && entries.get(k)?.version === version);
          if (found) return json(200, { cacheKey: found, archiveLocation: `${url}/archive/${encodeURIComponent(found)}`, scope: 'refs/heads/main' });
        }
        return json(204);
      }
      if (req.method === 'GET' && u.pathname.startsWith('/archive/')) {
        const entry = entries.get(decodeURIComponent(u.pathname.slice('/archive/'.length)));
        if (!entry) return json(404);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': entry.data.length });
        return res.end(entry.data);
      }
      if (req.method === 'POST' && u.pathname === '/_apis/artifactcache/caches') {
        const { key, version } = JSON.parse(body.toString()) as { key: string; version: string };
        log.push(`reserve ${key}`);
        if (entries.has(key)) return json(409, { message: `cache ${key} exists` });
        pending.set(nextId, { key, version, parts: [] });
        return json(201, { cacheId: nextId++ });
      }
      if (req.method === 'PATCH' && pending.has(id)) {
        const start = Number(/^bytes (\d+)-/.exec(String(req.headers['content-range']))?.[1]);
        pending.get(id)?.parts.push({ start, data: body });
        return json(204);
      }
      if (req.method === 'POST' && pending.has(id)) {
        const p = pending.get(id) as { key: string; version: string; parts: Array<{ start: number; data: Buffer }> };
        pending.delete(id);
        entries.set(p.key, { version: p.version, data: Buffer.concat(p.parts.sort((a, b) => a.start - b.start).map((x) => x.data)) });
        log.push(`commit ${p.key}`);
        return json(204);
      }
      json(400, { message: `unexpected ${req.method} ${u.pathname}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, entries, log, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const sha = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

async function expectInstalled(dir: string, key: string): Promise<void> {
  const expected = EXPECTED[key];
  if (!expected) throw new Error(`${key} is not in expected.json`);
  for (const [path, file] of Object.entries(expected.files)) {
    expect(sha(await readFile(join(dir, path))), `${key} ${path}`).toBe(file.sha256);
  }
}

function modelsYaml(registry: string, tinyVersion = 'latest'): string {
  return ['version: 1', `registry: ${registry}`, 'models:', '  tiny:', '    model: demo/tiny', `    version: ${tinyVersion}`, '  edge:', '    model: demo/edge', '    version: v1', ''].join('\n');
}

describe('install', () => {
  it('installs from an HTTP registry with the token, then installs from the shared cache without any download', async () => {
    const { ws, runnerTemp } = await workspace({ 'models.yaml': modelsYaml(server.url) });
    server.reset();
    const first = await runAction(ws, runnerTemp, { frozen: 'false', token: TOKEN, cache: 'true' });
    expect(first.code, first.stdout + first.stderr).toBe(0);

    // The token is masked before anything else can print it, and went out as a bearer token.
    expect(first.stdout).toContain(`::add-mask::${TOKEN}`);
    expect(first.stdout.replace(`::add-mask::${TOKEN}`, '')).not.toContain(TOKEN);
    expect(server.requests.length).toBeGreaterThan(0);
    expect(server.requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);

    // No cache service here (no ACTIONS_RUNTIME_TOKEN): skipped quietly, not a failure.
    expect(first.outputs['cache-hit']).toBe('false');
    expect(first.stdout).not.toMatch(/^::(error|warning)/m);
    const installed = JSON.parse(first.outputs.installed as string) as Array<{ name: string; resolved: string; source: string; size: number; path: string }>;
    expect(installed.map((m) => [m.name, m.resolved, m.source])).toEqual([
      ['edge', 'v1', 'network'],
      ['tiny', 'v2', 'network'],
    ]);
    const total = installed.reduce((s, m) => s + m.size, 0);
    expect(Number(first.outputs['bytes-downloaded'])).toBe(total);
    expect(first.outputs['models-dir']).toBe(join(ws, 'models'));
    await expectInstalled(join(ws, 'models', 'tiny'), 'demo/tiny@v2');
    await expectInstalled(join(ws, 'models', 'edge'), 'demo/edge@v1');
    // A non-frozen install writes the lock, as `models install` does.
    await stat(join(ws, 'models.lock'));
    // The default cache lives in RUNNER_TEMP: the folder @actions/cache would carry between runs.
    await stat(join(runnerTemp, 'xprim-models-cache', 'v1'));

    // One log group per model.
    expect(first.stdout).toMatch(/^::group::edge: demo\/edge@v1 \(from network\)$/m);
    expect(first.stdout).toMatch(/^::group::tiny: demo\/tiny@v2 \(from network\)$/m);
    expect(first.stdout.match(/^::endgroup::$/gm)).toHaveLength(2);

    // The job summary: a table of model, version, size, source and time.
    expect(first.summary).toContain('<h2>Models installed</h2>');
    expect(first.summary).toContain('<th>Model</th><th>Version</th><th>Size</th><th>Source</th><th>Time</th>');
    expect(first.summary).toMatch(/<tr><td>tiny \(demo\/tiny\)<\/td><td>latest → v2<\/td><td>254 KiB<\/td><td>network<\/td><td>\d+ ms<\/td><\/tr>/);
    expect(first.summary).toMatch(/<tr><td>edge \(demo\/edge\)<\/td><td>v1<\/td><td>256 KiB<\/td><td>network<\/td>/);

    // Another checkout (install root elsewhere via `root`), same cache via `cache-dir`, frozen by default.
    await writeFile(join(ws, 'models.lock.bak'), await readFile(join(ws, 'models.lock')));
    server.reset();
    const second = await runAction(ws, runnerTemp, { root: 'staging', 'cache-dir': join(runnerTemp, 'xprim-models-cache'), token: TOKEN });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.outputs['bytes-downloaded']).toBe('0');
    expect(second.outputs['models-dir']).toBe(join(ws, 'staging'));
    expect((JSON.parse(second.outputs.installed as string) as Array<{ source: string }>).map((m) => m.source)).toEqual(['cache', 'cache']);
    expect(server.count('/data/')).toBe(0);
    expect(second.summary).toMatch(/<td>tiny \(demo\/tiny\)<\/td><td>latest → v2<\/td><td>254 KiB<\/td><td>cache<\/td>/);
    await expectInstalled(join(ws, 'staging', 'tiny'), 'demo/tiny@v2');
    // Frozen never rewrites the lock.
    expect(await readFile(join(ws, 'models.lock'), 'utf8')).toBe(await readFile(join(ws, 'models.lock.bak'), 'utf8'));
  });

  it('restores and saves the chunk cache with @actions/cache, keyed on the OS and models.lock', async () => {
    const service = await startCacheService();
    try {
      const cacheEnv = { ACTIONS_CACHE_URL: `${service.url}/`, ACTIONS_RUNTIME_TOKEN: 'runtime-token' };
      const oneModel = modelsYaml(server.url).split('  edge:')[0] as string;
      const { ws, runnerTemp } = await workspace({ 'models.yaml': oneModel });
      const cacheDir = join(runnerTemp, 'xprim-models-cache');

      // Cold: no lock yet, nothing cached; after the install the cache is saved under the new lock's hash.
      const cold = await runAction(ws, runnerTemp, { frozen: 'false', token: TOKEN }, cacheEnv);
      expect(cold.code, cold.stdout + cold.stderr).toBe(0);
      const key1 = `xprim-models-Linux-${sha(await readFile(join(ws, 'models.lock')))}`;
      expect(service.log).toEqual(['lookup xprim-models-Linux-unlocked,xprim-models-Linux-', `reserve ${key1}`, `commit ${key1}`]);
      expect(cold.outputs['cache-hit']).toBe('false');

      // A new runner: empty cache folder, no models. Exact hit, nothing downloaded, nothing saved again.
      await rm(cacheDir, { recursive: true });
      await rm(join(ws, 'models'), { recursive: true });
      service.log.length = 0;
      server.reset();
      const warm = await runAction(ws, runnerTemp, { token: TOKEN }, cacheEnv);
      expect(warm.code, warm.stdout + warm.stderr).toBe(0);
      expect(warm.outputs['cache-hit']).toBe('true');
      expect(warm.outputs['bytes-downloaded']).toBe('0');
      expect(server.count('/data/')).toBe(0);
      expect(service.log).toEqual([`lookup ${key1},xprim-models-Linux-`]);
      expect(warm.summary).toContain('cache hit: yes');
      await expectInstalled(join(ws, 'models', 'tiny'), 'demo/tiny@v2');

      // A commit changes the lock (a model added): the previous cache restores by prefix, only the new model downloads.
      await writeFile(join(ws, 'models.yaml'), modelsYaml(server.url));
      const relock = await runAction(ws, runnerTemp, { frozen: 'false', cache: 'false', root: 'elsewhere', 'cache-dir': join(runnerTemp, 'elsewhere'), token: TOKEN });
      expect(relock.code, relock.stdout + relock.stderr).toBe(0);
      await rm(cacheDir, { recursive: true });
      service.log.length = 0;
      const partial = await runAction(ws, runnerTemp, { token: TOKEN }, cacheEnv);
      expect(partial.code, partial.stdout + partial.stderr).toBe(0);
      expect(partial.outputs['cache-hit']).toBe('false');
      const installed = JSON.parse(partial.outputs.installed as string) as Array<{ name: string; source: string; size: number }>;
      expect(installed.map((m) => [m.name, m.source])).toEqual([
        ['edge', 'network'],
        ['tiny', 'up-to-date'],
      ]);
      expect(Number(partial.outputs['bytes-downloaded'])).toBe(installed[0]?.size);
      const key2 = `xprim-models-Linux-${sha(await readFile(join(ws, 'models.lock')))}`;
      expect(key2).not.toBe(key1);
      expect(service.log).toEqual([`lookup ${key2},xprim-models-Linux-`, `reserve ${key2}`, `commit ${key2}`]);
      expect(partial.stdout).toContain(`chunk cache restored from ${key1}`);
    } finally {
      await service.close();
    }
  });

  it('maps `only`, `working-directory` and `mirrors` onto the API', async () => {
    // The configured registry is dead; the mirror from the input serves everything.
    const { ws, runnerTemp } = await workspace({ 'app/models.yaml': modelsYaml('http://127.0.0.1:9') });
    const run = await runAction(ws, runnerTemp, { 'working-directory': 'app', frozen: 'false', only: 'edge', mirrors: `\n${server.url}\n`, token: TOKEN, concurrency: '2' });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect((JSON.parse(run.outputs.installed as string) as Array<{ name: string }>).map((m) => m.name)).toEqual(['edge']);
    expect(run.outputs['models-dir']).toBe(join(ws, 'app', 'models'));
    await expectInstalled(join(ws, 'app', 'models', 'edge'), 'demo/edge@v1');
    await expect(stat(join(ws, 'app', 'models', 'tiny'))).rejects.toThrow();
  });

  it('fails a drifted models.yaml under frozen with an annotation on the drifted entry, changing nothing', async () => {
    const { ws, runnerTemp } = await workspace({ 'app/models.yaml': modelsYaml(registryDir) });
    const locked = await runAction(ws, runnerTemp, { 'working-directory': 'app', frozen: 'false' });
    expect(locked.code, locked.stdout + locked.stderr).toBe(0);
    const lock = await readFile(join(ws, 'app', 'models.lock'), 'utf8');
    await rm(join(ws, 'app', 'models'), { recursive: true });

    // tiny (line 4) now asks for v1, but the lock says latest.
    await writeFile(join(ws, 'app', 'models.yaml'), modelsYaml(registryDir, 'v1'));
    const run = await runAction(ws, runnerTemp, { 'working-directory': 'app' });
    expect(run.code).toBe(1);
    const annotations = run.stdout.split('\n').filter((l) => l.startsWith('::error'));
    expect(annotations).toHaveLength(1);
    expect(annotations[0]).toMatch(/^::error title=models install%3A E_FROZEN,file=app\/models\.yaml,line=4::--frozen: .*models\.lock is out of sync with .*models\.yaml \(changed since locked: tiny\) \(hint: run `models lock` and commit models\.lock\)$/);
    expect(run.outputs).toEqual({});
    expect(run.summary).toContain('models install failed');
    expect(await readFile(join(ws, 'app', 'models.lock'), 'utf8')).toBe(lock);
    await expect(stat(join(ws, 'app', 'models'))).rejects.toThrow();
  });

  it('points an invalid models.yaml annotation at its line and column, and rejects bad inputs', async () => {
    const yaml = ['version: 1', `registry: ${registryDir}`, 'models:', '  tiny:', '    model: demo/tiny', '    versoin: v1', ''].join('\n');
    const { ws, runnerTemp } = await workspace({ 'models.yaml': yaml });
    const run = await runAction(ws, runnerTemp, {});
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^::error title=models install%3A E_CONFIG,file=models\.yaml,line=\d+,col=\d+::.*models\.yaml/m);

    const bad = await runAction(ws, runnerTemp, { command: 'publish' });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^::error::input command: expected install, verify or outdated, got "publish" \(hint: /m);
    const badBool = await runAction(ws, runnerTemp, { frozen: 'yes' });
    expect(badBool.code).toBe(1);
    expect(badBool.stdout).toMatch(/^::error::input frozen: expected true or false, got "yes"/m);
  });
});

describe('outdated', () => {
  it('lists a moved alias in its output and summary, and fails only with fail-on-outdated', async () => {
    const registry = join(base, 'outdated-registry');
    await cp(join(CONFORMANCE, 'registry'), registry, { recursive: true });
    const { ws, runnerTemp } = await workspace({ 'models.yaml': modelsYaml(registry) });
    const lockRun = await runAction(ws, runnerTemp, { frozen: 'false' });
    expect(lockRun.code, lockRun.stdout + lockRun.stderr).toBe(0);

    const current = await runAction(ws, runnerTemp, { command: 'outdated', 'fail-on-outdated': 'true' });
    expect(current.code, current.stdout + current.stderr).toBe(0);
    expect(JSON.parse(current.outputs.outdated as string)).toEqual([]);
    expect(current.summary).toContain('Every model is current.');

    // Publish v3 and move `latest` onto it.
    const source = join(base, 'tiny-v3');
    await mkdir(source, { recursive: true });
    await writeFile(join(source, 'model.onnx'), 'a newer model\n');
    const published = await publish({ sourceDir: source, registryDir: registry, model: 'demo/tiny', version: 'v3', aliases: ['latest'] });

    const lenient = await runAction(ws, runnerTemp, { command: 'outdated' });
    expect(lenient.code, lenient.stdout + lenient.stderr).toBe(0);
    const rows = JSON.parse(lenient.outputs.outdated as string) as Array<{ name: string; status: string; locked: { resolved: string }; latest: { resolved: string; manifest: string } }>;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ name: 'tiny', status: 'outdated', locked: { resolved: 'v2' }, latest: { resolved: 'v3', manifest: published.manifestHash } });
    expect(lenient.stdout).toMatch(/^::warning title=models outdated%3A tiny,file=models\.yaml,line=4::tiny: demo\/tiny@latest is outdated: locked v2 \(3b938f1d\), registry has v3 /m);
    expect(lenient.stdout).not.toMatch(/^::error/m);
    expect(lenient.summary).toContain('<h2>Outdated models</h2>');
    expect(lenient.summary).toContain(`<tr><td>tiny (demo/tiny)</td><td>latest</td><td>v2 (3b938f1d)</td><td>v3 (${published.manifestHash.slice(0, 8)})</td><td>outdated</td></tr>`);
    expect(lenient.summary).toContain('<tr><td>edge (demo/edge)</td><td>v1</td><td>v1 (ad795ec9)</td><td>v1 (ad795ec9)</td><td>current</td></tr>');

    const strict = await runAction(ws, runnerTemp, { command: 'outdated', 'fail-on-outdated': 'true' });
    expect(strict.code).toBe(1);
    expect(JSON.parse(strict.outputs.outdated as string)).toHaveLength(1);
    expect(strict.stdout).toMatch(/^::error::1 model is not current: tiny \(outdated\)/m);
  });
});

describe('verify', () => {
  it('passes on intact models and fails with an annotation on the entry whose file changed', async () => {
    const { ws, runnerTemp } = await workspace({ 'models.yaml': modelsYaml(registryDir) });
    const install = await runAction(ws, runnerTemp, { frozen: 'false' });
    expect(install.code, install.stdout + install.stderr).toBe(0);

    const ok = await runAction(ws, runnerTemp, { command: 'verify' });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const models = JSON.parse(ok.outputs.verified as string) as Array<{ name: string; status: string }>;
    expect(models.map((m) => [m.name, m.status]).sort()).toEqual([
      ['edge', 'ok'],
      ['tiny', 'ok'],
    ]);
    expect(ok.summary).toContain('<h2>Models verified</h2>');

    const [firstFile] = Object.keys(EXPECTED['demo/tiny@v2']?.files ?? {});
    const victim = join(ws, 'models', 'tiny', firstFile as string);
    // Installed files may be read-only hardlinks into the store: replace, never write through.
    const bytes = await readFile(victim);
    await rm(victim);
    bytes[0] = (bytes[0] ?? 0) ^ 0xff;
    await writeFile(victim, bytes);
    const bad = await runAction(ws, runnerTemp, { command: 'verify' });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^::error title=models verify%3A tiny,file=models\.yaml,line=4::tiny: /m);
    expect(bad.stdout).not.toMatch(/^::error title=models verify%3A edge/m);
    expect(bad.summary).toContain(firstFile as string);
  });
});

describe('action.yml', () => {
  it('declares what the code reads and writes, with the documented defaults', async () => {
    const action = parse(await readFile(join(REPO, 'action.yml'), 'utf8')) as {
      inputs: Record<string, { default?: string }>;
      outputs: Record<string, unknown>;
      runs: { using: string; main: string };
    };
    expect(action.runs).toEqual({ using: 'node24', main: 'dist/index.js' });
    await stat(join(REPO, action.runs.main));
    const inputsSource = await readFile(join(REPO, 'src', 'action', 'inputs.ts'), 'utf8');
    const mainSource = await readFile(join(REPO, 'src', 'action', 'main.ts'), 'utf8');
    const read = [...inputsSource.matchAll(/(?:getInput|booleanInput)\('([a-z-]+)'/g)].map((m) => m[1]);
    const written = [...mainSource.matchAll(/setOutput\('([a-z-]+)'/g)].map((m) => m[1]);
    expect(new Set(read)).toEqual(new Set(Object.keys(action.inputs)));
    expect(new Set(written)).toEqual(new Set(Object.keys(action.outputs)));
    expect(action.inputs.command?.default).toBe('install');
    expect(action.inputs.frozen?.default).toBe('true');
    expect(action.inputs.cache?.default).toBe('true');
    expect(action.inputs['fail-on-outdated']?.default).toBe('false');
  });
});
