/**
 * The spine, end to end, through the real CLI: models.yaml → models.lock → install, against the
 * conformance registry served over real HTTP and read from a folder.
 */
import { readFile, readdir, rm, stat, utimes, writeFile, open } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { BIN, CONFORMANCE, EXPECTED, makeProject, mismatches, runCli } from './support/cli.js';

const REGISTRY = join(CONFORMANCE, 'registry');

const ALL_MODELS = `
models:
  tiny:
    model: demo/tiny
    version: latest
  tiny1:
    model: demo/tiny
    version: v1
  edge:
    model: demo/edge
    version: v1
  var:
    model: demo/var
    version: v1
    tags: [vision]
  shared:
    model: demo/shared
    version: v1
`;
const KEYS: Record<string, string> = { tiny: 'demo/tiny@v2', tiny1: 'demo/tiny@v1', edge: 'demo/edge@v1', var: 'demo/var@v1', shared: 'demo/shared@v1' };

function allExact(root: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, key] of Object.entries(KEYS)) {
    const bad = mismatches(join(root, name), key);
    if (bad.length > 0) out[name] = bad;
  }
  return out;
}

let server: RegistryServer;
beforeAll(async () => {
  server = await startRegistryServer({ root: REGISTRY });
});
afterAll(async () => {
  await server.close();
});

describe('install from the conformance registry', () => {
  it('over HTTP: every model byte-exact, no chunk requested twice, and a repeat makes zero requests', async () => {
    server.reset();
    const p = await makeProject(`version: 1\nregistry: ${server.url}\n${ALL_MODELS}`);
    const first = await runCli(['install'], { cwd: p.dir, env: p.env });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(allExact(join(p.dir, 'models'))).toEqual({});
    await server.settled();
    const byPath = new Map<string, number>();
    for (const r of server.requests) byPath.set(r.path, (byPath.get(r.path) ?? 0) + 1);
    const repeated = [...byPath].filter(([, n]) => n > 1);
    expect(repeated).toEqual([]);
    expect(byPath.get('/models.json')).toBe(1);

    server.reset();
    const second = await runCli(['install', '--frozen', '--json'], { cwd: p.dir, env: p.env });
    expect(second.code).toBe(0);
    const result = JSON.parse(second.stdout);
    expect(result.installed).toEqual([]);
    expect(result.skipped.map((m: { name: string }) => m.name).sort()).toEqual(Object.keys(KEYS).sort());
    expect(result.bytesDownloaded).toBe(0);
    await server.settled();
    expect(server.requests).toEqual([]);
  });

  it('from a folder registry (plain path and file:// URL)', async () => {
    for (const registry of [REGISTRY, `file://${REGISTRY}`]) {
      const p = await makeProject(`version: 1\nregistry: ${registry}\n${ALL_MODELS}`);
      const run = await runCli(['install'], { cwd: p.dir, env: p.env });
      expect(run.code, run.stderr).toBe(0);
      expect(allExact(join(p.dir, 'models'))).toEqual({});
    }
  });

  it('demo/shared reuses what demo/tiny v1 brought: only the chunk holding readme.md is fetched', async () => {
    const p = await makeProject(`version: 1\nregistry: ${server.url}\nmodels:\n  tiny1:\n    model: demo/tiny\n    version: v1\n`);
    expect((await runCli(['install'], { cwd: p.dir, env: p.env })).code).toBe(0);
    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nregistry: ${server.url}\nmodels:\n  tiny1:\n    model: demo/tiny\n    version: v1\n  shared:\n    model: demo/shared\n    version: v1\n`);
    server.reset();
    const run = await runCli(['install', '--json'], { cwd: p.dir, env: p.env });
    expect(run.code, run.stderr).toBe(0);
    await server.settled();
    const chunkRequests = server.requests.filter((r) => r.path.startsWith('/data/') && r.path !== `/data/${EXPECTED['demo/shared@v1']?.manifest}`);
    expect(chunkRequests.map((r) => r.path)).toEqual(['/data/897bb27e5bd59a58b71581e21eb065e1e33481a265e1066932bf40e628a3d17a']);
    expect(mismatches(join(p.dir, 'models', 'shared'), 'demo/shared@v1')).toEqual([]);
    const result = JSON.parse(run.stdout);
    expect(result.bytesDownloaded).toBe(200009 - 196608);
  });
});

describe('models.lock', () => {
  it('is deterministic: a re-run rewrites nothing, and key order in models.yaml does not matter', async () => {
    const p = await makeProject(`version: 1\nregistry: ${REGISTRY}\n${ALL_MODELS}`);
    expect((await runCli(['lock'], { cwd: p.dir, env: p.env })).code).toBe(0);
    const lockPath = join(p.dir, 'models.lock');
    const first = await readFile(lockPath, 'utf8');
    const before = (await stat(lockPath)).mtimeMs;
    const again = await runCli(['lock'], { cwd: p.dir, env: p.env });
    expect(again.stdout).toContain('up to date');
    expect(await readFile(lockPath, 'utf8')).toBe(first);
    expect((await stat(lockPath)).mtimeMs).toBe(before);

    const reordered = ALL_MODELS.split('\n  ').reverse().join('\n  ');
    const q = await makeProject(`models:\n  shared:\n    version: v1\n    model: demo/shared\n  var:\n    tags: [vision]\n    version: v1\n    model: demo/var\n  edge:\n    model: demo/edge\n    version: v1\n  tiny1:\n    version: v1\n    model: demo/tiny\n  tiny:\n    model: demo/tiny\n    version: latest\nregistry: ${REGISTRY}\nversion: 1\n`);
    void reordered;
    expect((await runCli(['lock'], { cwd: q.dir, env: q.env })).code).toBe(0);
    expect(await readFile(join(q.dir, 'models.lock'), 'utf8')).toBe(first);
    expect(first).toMatch(/^lockfileVersion: 1$/m);
    expect(first.endsWith('\n')).toBe(true);
    expect(first).toContain('resolved: v2');
  });

  it('--frozen with a drifted models.yaml exits 8, leaves the lock alone and never reads models.json', async () => {
    const p = await makeProject(`version: 1\nregistry: ${server.url}\nmodels:\n  tiny:\n    model: demo/tiny\n    version: v1\n`);
    expect((await runCli(['lock'], { cwd: p.dir, env: p.env })).code).toBe(0);
    const lock = await readFile(join(p.dir, 'models.lock'), 'utf8');
    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nregistry: ${server.url}\nmodels:\n  tiny:\n    model: demo/tiny\n    version: v2\n`);
    server.reset();
    const run = await runCli(['install', '--frozen'], { cwd: p.dir, env: p.env });
    expect(run.code).toBe(8);
    expect(run.stderr).toMatch(/out of sync.*tiny/);
    expect(run.stderr).toMatch(/hint: run `models lock`/);
    expect(await readFile(join(p.dir, 'models.lock'), 'utf8')).toBe(lock);
    await server.settled();
    expect(server.count('/models.json')).toBe(0);
    expect(server.requests).toEqual([]);
    await expect(stat(join(p.dir, 'models'))).rejects.toThrow();
  });

  it('--frozen without a lock exits 8', async () => {
    const p = await makeProject(`version: 1\nregistry: ${REGISTRY}\nmodels:\n  tiny:\n    model: demo/tiny\n    version: v1\n`);
    const run = await runCli(['install', '--frozen'], { cwd: p.dir, env: p.env });
    expect(run.code).toBe(8);
    expect(run.stderr).toContain('models.lock is missing');
  });

  it('a malformed models.yaml exits 2 with file:line:col', async () => {
    const p = await makeProject(`version: 1\nregistry: ${REGISTRY}\nmodels:\n  tiny:\n    model: demo/tiny\n    verison: v1\n`);
    const run = await runCli(['install'], { cwd: p.dir, env: p.env });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/models\.yaml:6:5: .*verison/);
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});

describe('repair and state', () => {
  it('repairs a deleted file and a file modified in place (through its hardlink) without trusting the damaged store copy', async () => {
    const p = await makeProject(`version: 1\nregistry: ${server.url}\nmodels:\n  tiny:\n    model: demo/tiny\n    version: v1\n`);
    expect((await runCli(['install'], { cwd: p.dir, env: p.env })).code).toBe(0);
    const dir = join(p.dir, 'models', 'tiny');
    await rm(join(dir, 'config.json'));
    server.reset();
    const repaired = await runCli(['install', '--frozen'], { cwd: p.dir, env: p.env });
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.stdout).toContain('repaired config.json');
    await server.settled();
    expect(server.requests).toEqual([]); // from the store
    expect(mismatches(dir, 'demo/tiny@v1')).toEqual([]);

    // Modify in place: the write goes through the hardlink into the stored copy too.
    const handle = await open(join(dir, 'model.bin'), 'r+');
    await handle.write(Buffer.from('XXXX'), 0, 4, 1000);
    await handle.close();
    server.reset();
    const again = await runCli(['install', '--frozen'], { cwd: p.dir, env: p.env });
    expect(again.code, again.stderr).toBe(0);
    expect(mismatches(dir, 'demo/tiny@v1')).toEqual([]);
    await server.settled();
    expect(server.count('/data/')).toBeGreaterThan(0); // the damaged stored copy was not reused
  });

  it('--verify notices a same-size, same-mtime change that the fast check cannot', async () => {
    const p = await makeProject(`version: 1\nregistry: ${REGISTRY}\nmodels:\n  tiny:\n    model: demo/tiny\n    version: v1\n`);
    expect((await runCli(['install', '--link', 'copy'], { cwd: p.dir, env: p.env })).code).toBe(0);
    const file = join(p.dir, 'models', 'tiny', 'tokenizer', 'vocab.txt');
    const before = await stat(file);
    const handle = await open(file, 'r+');
    await handle.write(Buffer.from('!'), 0, 1, 10);
    await handle.close();
    await utimes(file, before.atime, before.mtime);
    const trusting = await runCli(['install', '--frozen', '--json'], { cwd: p.dir, env: p.env });
    expect(JSON.parse(trusting.stdout).installed).toEqual([]);
    const verifying = await runCli(['install', '--frozen', '--verify', '--json'], { cwd: p.dir, env: p.env });
    expect(verifying.code, verifying.stderr).toBe(0);
    const result = JSON.parse(verifying.stdout);
    expect(result.installed[0].repaired).toEqual(['tokenizer/vocab.txt']);
    expect(mismatches(join(p.dir, 'models', 'tiny'), 'demo/tiny@v1')).toEqual([]);
  });

  it('trusts its records only for the exact models.yaml and models.lock it installed from', async () => {
    const p = await makeProject(`version: 1\nregistry: ${REGISTRY}\nmodels:\n  tiny:\n    model: demo/tiny\n    version: v1\n`);
    expect((await runCli(['install'], { cwd: p.dir, env: p.env })).code).toBe(0);
    const { createHash } = await import('node:crypto');
    const digest = async (file: string) => createHash('sha256').update(await readFile(join(p.dir, file))).digest('hex');
    const inputs = async () => JSON.parse(await readFile(join(p.dir, 'models', 'models.integrity.json'), 'utf8')).inputs;
    expect(await inputs()).toEqual({ config: await digest('models.yaml'), lock: await digest('models.lock') });

    // A comment changes models.yaml: the full check runs, finds everything in place, records the new inputs.
    await writeFile(join(p.dir, 'models.yaml'), `# a comment\n${await readFile(join(p.dir, 'models.yaml'), 'utf8')}`);
    const again = await runCli(['install', '--frozen', '--json'], { cwd: p.dir, env: p.env });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).installed).toEqual([]);
    expect((await inputs()).config).toBe(await digest('models.yaml'));

    // A damaged lock is never trusted on the strength of the records: it is parsed, and refused.
    const lock = await readFile(join(p.dir, 'models.lock'), 'utf8');
    await writeFile(join(p.dir, 'models.lock'), lock.replace(/manifest: [0-9a-f]{64}/, 'manifest: nothex'));
    const damaged = await runCli(['install', '--frozen'], { cwd: p.dir, env: p.env });
    expect(damaged.code).toBe(2);
    expect(damaged.stderr).toMatch(/models\.lock:\d+:\d+/);
  });

  it('removes models that left models.yaml', async () => {
    const p = await makeProject(`version: 1\nregistry: ${REGISTRY}\nmodels:\n  a:\n    model: demo/tiny\n    version: v1\n  b:\n    model: demo/edge\n    version: v1\n`);
    expect((await runCli(['install'], { cwd: p.dir, env: p.env })).code).toBe(0);
    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nregistry: ${REGISTRY}\nmodels:\n  a:\n    model: demo/tiny\n    version: v1\n`);
    const run = await runCli(['install', '--json'], { cwd: p.dir, env: p.env });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).removed).toEqual(['b']);
    expect((await readdir(join(p.dir, 'models'))).sort()).toEqual(['a', 'models.integrity.json']);
  });

  it('says which model it removed, as npm ci does, instead of "0 changes"', async () => {
    const p = await makeProject(`version: 1\nregistry: ${REGISTRY}\nmodels:\n  a:\n    model: demo/tiny\n    version: v1\n  b:\n    model: demo/edge\n    version: v1\n`);
    expect((await runCli(['install'], { cwd: p.dir, env: p.env })).code).toBe(0);
    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nregistry: ${REGISTRY}\nmodels:\n  a:\n    model: demo/tiny\n    version: v1\n`);
    const run = await runCli(['install'], { cwd: p.dir, env: p.env });
    expect(run.code, run.stderr).toBe(0);
    const said = run.stdout + run.stderr;
    expect(said).toContain('models.lock updated (0 changes, 1 removed)');
    expect(said).toContain(`removed b (${join(p.dir, 'models', 'b')})`);
    expect(said).toMatch(/1 model up to date, 1 removed in /);
  });
});

describe('install options', () => {
  const yaml = (registry: string) => `version: 1
registry: ${registry}
models:
  tiny:
    model: demo/tiny
    version: v1
    tags: [text]
  edge:
    model: demo/edge
    version: v1
    path: nested/edge-files
    when: { os: [win32] }
  var:
    model: demo/var
    version: v1
    tags: [vision]
`;

  it('--only by name or tag, --platform with when:, --root elsewhere, and `path:`', async () => {
    const p = await makeProject(yaml(REGISTRY));
    const onlyVision = await runCli(['install', '--only', 'vision', '--json'], { cwd: p.dir, env: p.env });
    expect(onlyVision.code, onlyVision.stderr).toBe(0);
    expect(JSON.parse(onlyVision.stdout).installed.map((m: { name: string }) => m.name)).toEqual(['var']);

    const staging = join(p.dir, 'staging', 'win');
    const win = await runCli(['install', '--frozen', '--root', staging, '--platform', 'win32-x64', '--json'], { cwd: p.dir, env: p.env });
    expect(win.code, win.stderr).toBe(0);
    expect(JSON.parse(win.stdout).installed.map((m: { name: string }) => m.name).sort()).toEqual(['edge', 'tiny', 'var']);
    expect(mismatches(join(staging, 'nested', 'edge-files'), 'demo/edge@v1')).toEqual([]);

    const linux = await runCli(['install', '--frozen', '--platform', 'linux-x64', '--json'], { cwd: p.dir, env: p.env });
    expect(JSON.parse(linux.stdout).installed.map((m: { name: string }) => m.name)).toEqual(['tiny']);
    await expect(stat(join(p.dir, 'models', 'nested'))).rejects.toThrow();

    const bad = await runCli(['install', '--only', 'nope'], { cwd: p.dir, env: p.env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('nope');
  });

  it('--no-cache leaves the shared cache empty; --offline installs from the cache and fails clearly without it', async () => {
    const p = await makeProject(yaml(server.url));
    const run = await runCli(['install', '--no-cache', '--only', 'tiny'], { cwd: p.dir, env: p.env });
    expect(run.code, run.stderr).toBe(0);
    expect(mismatches(join(p.dir, 'models', 'tiny'), 'demo/tiny@v1')).toEqual([]);
    const cached = await readdir(join(p.cache, 'v1', 'files')).catch(() => []);
    expect(cached).toEqual([]);
    expect((await readdir(join(p.dir, 'models'))).sort()).toEqual(['models.integrity.json', 'tiny']);

    // Fill the cache, then install into a fresh root with the registry gone.
    await rm(join(p.dir, 'models'), { recursive: true });
    expect((await runCli(['install', '--only', 'tiny'], { cwd: p.dir, env: p.env })).code).toBe(0);
    await rm(join(p.dir, 'models'), { recursive: true });
    const offline = await runCli(['install', '--frozen', '--offline', '--only', 'tiny'], { cwd: p.dir, env: p.env });
    expect(offline.code, offline.stderr).toBe(0);
    expect(mismatches(join(p.dir, 'models', 'tiny'), 'demo/tiny@v1')).toEqual([]);
    const missing = await runCli(['install', '--frozen', '--offline', '--only', 'vision'], { cwd: p.dir, env: { ...p.env, MODELS_CACHE_DIR: join(p.dir, 'empty-cache') } });
    expect(missing.code).toBe(5);
    expect(missing.stderr).toContain('--offline');
  });

  it('prints a line per model start and finish when not a TTY, and nothing with --quiet', async () => {
    const p = await makeProject(yaml(REGISTRY));
    const run = await runCli(['install'], { cwd: p.dir, env: p.env });
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('installing '))).toHaveLength(2);
    expect(lines.filter((l) => l.startsWith('installed '))).toHaveLength(2);
    expect(lines.length).toBeLessThanOrEqual(6);
    const quiet = await runCli(['install', '--frozen', '-q'], { cwd: p.dir, env: p.env });
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toBe('');
  });
});

describe('progress on a terminal', () => {
  // A real pseudo-terminal (util-linux `script`), sized so that listr2 has room to draw.
  const hasScript = (() => {
    try {
      return spawnSync('script', ['--version']).status === 0;
    } catch {
      return false;
    }
  })();

  it.skipIf(!hasScript)('shows one task per model with bytes, percent, speed and ETA, then a tick', async () => {
    const p = await makeProject(`version: 1\nregistry: ${REGISTRY}\nmodels:\n  tiny:\n    model: demo/tiny\n    version: v1\n`);
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const env: NodeJS.ProcessEnv = { ...process.env, ...p.env, TERM: 'xterm' };
    delete env.CI;
    delete env.NO_COLOR;
    const command = `stty cols 120 rows 20; ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} install --limit-rate 100KiB`;
    const { stdout } = await promisify(execFile)('script', ['-qefc', command, '/dev/null'], { cwd: p.dir, env });
    // eslint-disable-next-line no-control-regex -- strip the terminal's escape sequences to read the frames
    const frames = stdout.replace(/\u001b\[[0-9;?]*[a-zA-Z]/g, '').split(/[\r\n]+/);
    expect(frames.some((f) => /tiny: [\d.]+ KiB\/244 KiB \d+% [\d.]+ (KiB|MiB)\/s ETA \d+s/.test(f))).toBe(true);
    expect(frames.some((f) => /✔ tiny demo\/tiny@v1 244 KiB/.test(f))).toBe(true);
    expect(mismatches(join(p.dir, 'models', 'tiny'), 'demo/tiny@v1')).toEqual([]);
  });
});

describe('bounded memory', () => {
  it('installs a 384 MiB model with peak RSS far below its size', async () => {
    const { publish } = await import('../src/ops/publish.js');
    const { tempDir } = await import('./support/cli.js');
    const work = await tempDir();
    const source = join(work, 'src');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(source);
    // 384 MiB of incompressible-ish data, written in 8 MiB slices (the test itself stays small too).
    const { randomFillSync } = await import('node:crypto');
    const handle = await open(join(source, 'big.bin'), 'w');
    const slice = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < 48; i++) await handle.write(randomFillSync(slice));
    await handle.close();
    const registry = join(work, 'registry');
    await publish({ sourceDir: source, registryDir: registry, model: 'big/model', version: 'v1' });
    const big = await startRegistryServer({ root: registry });
    try {
      const p = await makeProject(`version: 1\nregistry: ${big.url}\nmodels:\n  big:\n    model: big/model\n    version: v1\n`);
      const wrapper = join(p.dir, 'rss.mjs');
      await writeFile(wrapper, `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(join(p.dir, 'rss.txt'))}, String(process.resourceUsage().maxRSS)));\nprocess.argv[1] = ${JSON.stringify(BIN)};\nawait import(${JSON.stringify(BIN)});\n`);
      // Asynchronous on purpose: the registry server runs in this process.
      const { execFile } = await import('node:child_process');
      const { promisify } = await import('node:util');
      await promisify(execFile)(process.execPath, [wrapper, 'install'], { cwd: p.dir, env: { ...process.env, ...p.env, CI: 'true' } });
      const maxRssMiB = Number(await readFile(join(p.dir, 'rss.txt'), 'utf8')) / 1024;
      // About 137 MiB here, most of it the HTTP client's garbage between collections (see README,
      // Performance); the bound leaves room for a loaded CI machine and is still half the model.
      expect(maxRssMiB, `peak RSS ${maxRssMiB.toFixed(0)} MiB`).toBeLessThan(192);
      expect((await stat(join(p.dir, 'models', 'big', 'big.bin'))).size).toBe(384 * 1024 * 1024);
      await rm(p.dir, { recursive: true, force: true });
    } finally {
      await big.close();
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('a no-op install --frozen', () => {
  it('loads none of the bundled CLI network, store or source code (issue #16: the start-up is most of its time)', async () => {
    const p = await makeProject(`version: 1\nregistry: ${REGISTRY}\nmodels:\n  tiny:\n    model: demo/tiny\n    version: latest\n`);
    expect((await runCli(['install'], { cwd: p.dir, env: p.env })).code).toBe(0);
    // A module hook (on Node's loader thread) logs every chunk of lib/cli-bundle the run imports.
    const log = join(p.dir, 'loaded.txt');
    await writeFile(join(p.dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';\nexport async function resolve(specifier, context, next) {\n  const found = await next(specifier, context);\n  if (found.url.includes('/cli-bundle/')) appendFileSync(${JSON.stringify(log)}, found.url + '\\n');\n  return found;\n}\n`);
    await writeFile(join(p.dir, 'register.mjs'), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`);
    const run = spawnSync(process.execPath, ['--import', join(p.dir, 'register.mjs'), BIN, 'install', '--frozen'], { cwd: p.dir, env: { ...process.env, ...p.env, CI: 'true' }, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/up to date/);
    const loaded = [...new Set((await readFile(log, 'utf8')).trim().split('\n'))].map((url) => fileURLToPath(url));
    expect(loaded.map((path) => basename(path))).toContain('index.js');
    // Bundling keeps declarations' names (esbuild writes `var Store = class`): the slow path, the store, the HTTP client, a source.
    const heavy = /\b(function installPending|(?:var|let|const) (?:Store|HttpClient|UrlTableSource) = class)\b/;
    const offending = [];
    for (const path of loaded) if (heavy.test(await readFile(path, 'utf8'))) offending.push(basename(path));
    expect(offending).toEqual([]);
    await rm(p.dir, { recursive: true, force: true });
  });
});
