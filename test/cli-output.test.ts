/**
 * Output a person can trust (issues 10 G, 11 items 9, 10, 13, 14, 18, 19): registry text cannot
 * drive the terminal, deep metadata prints, bad settings and flags are refused up front with exit
 * 2 naming them, a closed pipe ends output quietly, and help covers every command and flag.
 */
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { craftRegistry } from './support/craft.js';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { BIN, cleanTemps, cliEnv, hasStackTrace, runCli, tempDir, writeProject } from './support/robustness.js';

const servers: RegistryServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(cleanTemps);

async function project(models: Parameters<typeof craftRegistry>[1], entries: Parameters<typeof writeProject>[2]) {
  const sandbox = await tempDir('xprim-output-');
  const registry = join(sandbox, 'registry');
  const hashes = await craftRegistry(registry, models);
  const proj = join(sandbox, 'proj');
  await writeProject(proj, registry, entries);
  const env = cliEnv(join(sandbox, 'cache'));
  const cli = (args: string[], extra: Record<string, string> = {}) => runCli(args, proj, { ...env, ...extra });
  return { sandbox, registry, hashes, proj, env, cli };
}

// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/;

describe('terminal escapes from a registry are shown escaped (10G)', () => {
  const EVIL = 'v1\u001b]0;pwned\u0007\u001b[2J';
  const models = {
    'demo/a': {
      [EVIL]: { files: { 'a.bin': 'aaaa' }, metadata: { note: 'hi\u001b[31mred\u009b2J\u202eevil', [`k\u0007`]: 1 } },
      v2: { files: { 'b.bin': 'bbbb' } },
    },
  };

  it('list --remote, info --remote and --json print no raw control character', async () => {
    const { cli } = await project(models, { a: { model: 'demo/a', version: 'v2' } });
    for (const args of [['list', '--remote'], ['info', 'demo/a'], ['info', 'demo/a', EVIL], ['list', '--remote', '--json'], ['info', 'demo/a', '--json']]) {
      const result = await cli(args);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
      expect(result.stdout, args.join(' ')).not.toMatch(RAW_CONTROL);
      expect(result.stderr).not.toMatch(RAW_CONTROL);
    }
    const list = await cli(['list', '--remote']);
    expect(list.stdout).toContain('v1\\x1b]0;pwned\\x07\\x1b[2J');
    expect(list.stdout).toContain('hi\\x1b[31mred\\x9b2J\\u202eevil');
    // --json keeps the exact value, as a JSON escape.
    const json = JSON.parse((await cli(['list', '--remote', '--json'])).stdout) as { models: { version: string }[] };
    expect(json.models.map((m) => m.version)).toContain(EVIL);
  });

  it('the "available: ..." hint of a missing version escapes the names it lists', async () => {
    const { cli } = await project(models, { a: { model: 'demo/a', version: 'nosuch' } });
    const result = await cli(['lock']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^hint: available: v1\\x1b\]0;pwned\\x07\\x1b\[2J, v2$/m);
    expect(result.stderr).not.toMatch(RAW_CONTROL);
  });
});

describe('deeply nested metadata (11.9)', () => {
  it('list --remote and info --remote print it, cut at a depth, without a stack overflow', async () => {
    const { registry, cli } = await project({ 'demo/deep': { v1: { files: { 'a.bin': 'x' } } } }, { deep: { model: 'demo/deep', version: 'v1' } });
    const index = JSON.parse(await readFile(join(registry, 'models.json'), 'utf8')) as Record<string, Record<string, Record<string, Record<string, unknown>>>>;
    const depth = 200_000;
    const text = JSON.stringify(index).replace('"hash"', `"metadata":{"tree":${'['.repeat(depth)}${']'.repeat(depth)}},"hash"`);
    await writeFile(join(registry, 'models.json'), text);
    for (const args of [['list', '--remote'], ['info', 'demo/deep', 'v1'], ['info', 'deep', '--remote'], ['list', '--remote', '--json']]) {
      const result = await cli(args);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
      expect(result.stdout).toContain('[nested too deep]');
      expect(hasStackTrace(result.stderr)).toBe(false);
    }
  });
});

describe('numbers in the environment (11.10)', () => {
  for (const [name, value] of [
    ['MODELS_LOCK_TIMEOUT', 'abc'],
    ['MODELS_LOCK_TIMEOUT', '0x10'],
    ['MODELS_CONCURRENCY', 'abc'],
    ['MODELS_CONCURRENCY', '1000'],
    ['MODELS_IDLE_TIMEOUT', 'NaN'],
    ['MODELS_RETRIES', '2.5'],
  ] as const) {
    it(`${name}=${value} is refused with exit 2 naming the variable, even with nothing to do`, async () => {
      const { cli } = await project({ 'demo/a': { v1: { files: { 'a.bin': 'aaaa' } } } }, { a: { model: 'demo/a', version: 'v1' } });
      expect((await cli(['install'])).code).toBe(0);
      for (const args of [['install'], ['install', '--frozen', '--verify']]) {
        const result = await cli(args, { [name]: value });
        expect(result.code, result.stderr).toBe(2);
        expect(result.stderr).toMatch(new RegExp(`^error: ${name}=`, 'm'));
        expect(hasStackTrace(result.stderr)).toBe(false);
      }
    });
  }

  it('cache prune refuses MODELS_LOCK_TIMEOUT=abc instead of waiting with NaN', async () => {
    const { cli } = await project({ 'demo/a': { v1: { files: { 'a.bin': 'aaaa' } } } }, { a: { model: 'demo/a', version: 'v1' } });
    expect((await cli(['install'])).code).toBe(0);
    const result = await cli(['cache', 'prune', '-y'], { MODELS_LOCK_TIMEOUT: 'abc' });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(/MODELS_LOCK_TIMEOUT/);
  });
});

describe('a folder registry that does not exist (11.13)', () => {
  it('is a configuration error: exit 2, "registry folder ... does not exist"', async () => {
    const sandbox = await tempDir('xprim-output-');
    await writeProject(sandbox, './no-such-registry', { a: { model: 'demo/a', version: 'v1' } });
    const env = cliEnv(join(sandbox, 'cache'));
    for (const args of [['install'], ['lock'], ['list', '--remote']]) {
      const result = await runCli(args, sandbox, env);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain(`registry folder ${join(sandbox, 'no-such-registry')} does not exist`);
      expect(result.stderr).not.toMatch(/404/);
    }
  });
});

/** Run `models ARGS | head ...` in a real shell pipe; the CLI's own exit code and stderr. */
function pipeToHead(args: string[], head: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: string; stderr: string; stdout: string }> {
  const quoted = args.map((a) => `'${a}'`).join(' ');
  const script = `"${process.execPath}" "${BIN}" ${quoted} 2>"$ERR" | head ${head}; echo "exit=\${PIPESTATUS[0]}"; cat "$ERR"`;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, env: { ...env, ERR: join(cwd, 'stderr.txt') } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      const match = /exit=(\d+)\n([\s\S]*)$/.exec(out);
      resolve({ code: match?.[1] ?? '?', stderr: match?.[2] ?? out, stdout: out.slice(0, match?.index ?? out.length) });
    });
  });
}

describe('a closed pipe ends output quietly (11.14)', () => {
  it('info NAME | head -1, info GROUP/MODEL V | head, list --remote | head -c 100: exit 0, no EPIPE', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 6000; i++) files[`shard-${String(i).padStart(5, '0')}.bin`] = '';
    files['weights.bin'] = 'w';
    const versions: Record<string, { files: Record<string, string> }> = { v1: { files } };
    for (let i = 0; i < 3000; i++) versions[`v1.${i}`] = { files: { 'x.bin': String(i) } };
    const { proj, env, cli } = await project({ 'demo/big': versions }, { big: { model: 'demo/big', version: 'v1' } });
    expect((await cli(['lock'])).code).toBe(0);
    for (const [args, head] of [
      [['info', 'big'], '-1'],
      [['info', 'demo/big', 'v1'], ''],
      [['list', '--remote'], '-c 100'],
    ] as const) {
      const result = await pipeToHead([...args], head, proj, env);
      expect(result.stdout.length).toBeGreaterThan(0);
      expect(result.stderr, `${args.join(' ')} | head ${head}`).not.toMatch(/EPIPE|at .*\.js:\d+/);
      expect(result.code, result.stderr).toBe('0');
    }
  });
});

describe('messages and flags (11.18)', () => {
  it('verify NAME of an unknown model does not talk about --only', async () => {
    const { cli } = await project({ 'demo/a': { v1: { files: { 'a.bin': 'aaaa' } } } }, { a: { model: 'demo/a', version: 'v1' } });
    expect((await cli(['lock'])).code).toBe(0);
    const result = await cli(['verify', 'nosuch']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^error: nosuch: no model or tag of that name/m);
    expect(result.stderr).not.toMatch(/--only/);
  });

  it('a manifest 404 names data/<hash> and says that models.lock may have been edited', async () => {
    const { registry, proj, hashes, cli } = await project({ 'demo/a': { v1: { files: { 'a.bin': 'aaaa' } } } }, { a: { model: 'demo/a', version: 'v1' } });
    const server = await startRegistryServer({ root: registry });
    servers.push(server);
    await writeProject(proj, server.url, { a: { model: 'demo/a', version: 'v1' } });
    expect((await cli(['lock'])).code).toBe(0);
    const lockFile = join(proj, 'models.lock');
    await writeFile(lockFile, (await readFile(lockFile, 'utf8')).replace(hashes['demo/a@v1'] as string, 'a'.repeat(64)));
    const result = await cli(['install', '--frozen']);
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toContain(`not found (404) at ${server.url}/data/${'a'.repeat(64)}`);
    expect(result.stderr).toMatch(/^hint: .*models\.lock was edited/m);
  });

  it('--concurrency 100000 is refused up front, with or without work to do', async () => {
    const { cli, cache } = await project({ 'demo/a': { v1: { files: { 'a.bin': 'aaaa' } } } }, { a: { model: 'demo/a', version: 'v1' } }).then((p) => ({ ...p, cache: join(p.sandbox, 'cache') }));
    const before = await cli(['install', '--concurrency', '100000']);
    expect(before.code, before.stderr).toBe(2);
    expect((await cli(['install'])).code).toBe(0);
    for (const args of [['install', '--concurrency', '100000'], ['verify', '--concurrency', '100000'], ['update', '--concurrency', '100000']]) {
      const result = await cli(args);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(/--concurrency.*1 to 256/);
    }
    await rm(cache, { recursive: true, force: true });
  });
});

describe('help (11.19)', () => {
  it('help cache prune shows that command; help lists -V/--version; command help lists the global flags', async () => {
    const dir = await tempDir('xprim-output-');
    const env = cliEnv(join(dir, 'cache'));
    const prune = await runCli(['help', 'cache', 'prune'], dir, env);
    expect(prune.code, prune.stderr).toBe(0);
    expect(prune.stdout).toMatch(/^Usage: models cache prune/m);
    expect(prune.stdout).toMatch(/--older-than/);
    const top = await runCli(['--help'], dir, env);
    expect(top.stdout).toMatch(/-V, --version/);
    for (const args of [['help', 'install'], ['install', '--help'], ['help', 'cache', 'prune']]) {
      const help = await runCli(args, dir, env);
      expect(help.stdout, args.join(' ')).toMatch(/Global Options:[\s\S]*--json[\s\S]*--quiet[\s\S]*--verbose[\s\S]*--config[\s\S]*--cache-dir/);
    }
    const unknown = await runCli(['help', 'cache', 'nosuch'], dir, env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "cache nosuch"/);
  });
});
