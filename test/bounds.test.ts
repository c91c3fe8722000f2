/**
 * Bad input, bounded, and a clear error (issue 11 items 8, 11, 12): names that are
 * Object.prototype keys, paths that fit no file system, and inputs sized to exhaust memory.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Lockfile } from '../src/project/lockfile.js';
import { serializeLockfile, serializeWithYaml } from '../src/project/lock-writer.js';
import { checkRelativePath } from '../src/util/paths.js';
import { validateManifest } from '../src/registry/manifest.js';
import { checkRelativePathForTest as runtimeCheck } from '../src/runtime/index.js';
import { craftRegistry, sha } from './support/craft.js';
import { cleanTemps, cliEnv, hasStackTrace, runCli, tempDir, writeProject } from './support/robustness.js';

afterAll(cleanTemps);

describe('names that are Object.prototype keys (11.11)', () => {
  const PROTO = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];

  it('a model called "constructor", added to a locked and installed project: every command works', async () => {
    const sandbox = await tempDir('xprim-bounds-');
    const registry = join(sandbox, 'registry');
    const versions = Object.fromEntries(PROTO.map((v, i) => [v, { files: { [`${i}.bin`]: `content ${v}` } }]));
    await craftRegistry(registry, { 'demo/constructor': versions, 'demo/a': { v1: { files: { 'a.bin': 'aaaa' } } } });
    const proj = join(sandbox, 'proj');
    await writeProject(proj, registry, { a: { model: 'demo/a', version: 'v1' } });
    const env = cliEnv(join(sandbox, 'cache'));
    const cli = (...args: string[]) => runCli(args, proj, env);
    expect((await cli('install')).code).toBe(0);
    // Not in models.lock, not in the install record: a plain-object lookup would find Object's own.
    await appendFile(join(proj, 'models.yaml'), '  constructor:\n    model: demo/constructor\n    version: hasOwnProperty\n');
    const runs: [string[], number][] = [
      [['list'], 0],
      [['verify'], 4],
      [['path', 'constructor'], 4],
      [['info', 'constructor'], 0],
      [['lock'], 0],
      [['list'], 0],
      [['install', '--frozen'], 0],
      [['verify', 'constructor'], 0],
      [['path', 'constructor'], 0],
      [['doctor'], 0],
      [['outdated'], 0],
      ...PROTO.map((v): [string[], number] => [['info', 'demo/constructor', v], 0]),
    ];
    for (const [args, code] of runs) {
      const result = await cli(...args);
      expect(result.stderr, args.join(' ')).not.toMatch(/unexpected error/);
      expect(hasStackTrace(result.stderr)).toBe(false);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(code);
    }
    expect(await readFile(join(proj, 'models', 'constructor', '3.bin'), 'utf8')).toBe('content hasOwnProperty');
    // The other keys are not valid local names: a clear config error, not a crash.
    for (const name of ['__proto__', 'toString', 'hasOwnProperty']) {
      await writeProject(proj, registry, { [name]: { model: 'demo/constructor', version: 'constructor' } });
      const result = await cli('lock');
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(new RegExp(`models\\.yaml:\\d+:\\d+: model name "${name}"`));
    }
  });
});

describe('one path check, counting bytes (11.12)', () => {
  const CJK = '字'; // 3 bytes in UTF-8, 1 UTF-16 unit
  const cases = [
    '..vad', 'a/..b', 'a/b..', '...', '..', 'a/../b', './a', 'a/.', '', 'a//b', 'a/', '/abs', 'C:x', 'a\\b', 'a\u0001b', 'a\u007fb',
    'x'.repeat(255), 'x'.repeat(256), CJK.repeat(85), CJK.repeat(86), `${'a/'.repeat(2047)}a`, `${'a/'.repeat(2047)}ab`, CJK.repeat(100),
  ];

  it('the runtime copy gives the same answer as src/util/paths.ts, on fixed cases and on random paths', () => {
    for (const path of cases) expect(runtimeCheck(path), JSON.stringify(path)).toBe(checkRelativePath(path));
    // eslint-disable-next-line no-control-regex -- NUL on purpose: a path the check must refuse
    const segment = fc.stringMatching(/^[a-z.\u5b57\\:\u0000]{0,4}$/);
    fc.assert(fc.property(fc.array(segment, { maxLength: 5 }).map((parts) => parts.join('/')), (path) => runtimeCheck(path) === checkRelativePath(path)), { numRuns: 2000 });
  });

  it('lengths are bytes: 100 CJK characters (300 bytes) is too long a name, 85 (255 bytes) is not', () => {
    expect(checkRelativePath(CJK.repeat(85))).toBeUndefined();
    expect(checkRelativePath(CJK.repeat(100))).toMatch(/300 bytes/);
    expect(checkRelativePath(`${'a/'.repeat(2047)}ab`)).toMatch(/4096 bytes/);
  });

  async function projectWith(files: Record<string, string>, path?: string) {
    const sandbox = await tempDir('xprim-bounds-');
    const registry = join(sandbox, 'registry');
    await craftRegistry(registry, { 'demo/p': { v1: { files } } });
    const proj = join(sandbox, 'proj');
    await writeProject(proj, registry, { m: { model: 'demo/p', version: 'v1', ...(path ? { path } : {}) } });
    return { proj, sandbox, cli: (...args: string[]) => runCli(args, proj, cliEnv(join(sandbox, 'cache'))) };
  }

  it('path: ..vad is refused by config up front (a dot-folder), while a manifest file under ..vad/ is a name and installs', async () => {
    // Config and install reach one verdict: `..vad` is not `..`, but as a `path:` it is a dot-folder
    // (issue 10 A), refused with models.yaml:line:col before anything is downloaded.
    const refused = await projectWith({ 'a.bin': 'aaaa' }, '..vad');
    const result = await refused.cli('install');
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(/models\.yaml:\d+:\d+: models\.m: path "\.\.vad".*dot-folder/);
    expect(existsSync(join(refused.proj, 'models'))).toBe(false);
    const { proj, cli } = await projectWith({ '..vad/a.bin': 'aaaa' });
    expect((await cli('install')).code).toBe(0);
    expect(await readFile(join(proj, 'models', 'm', '..vad', 'a.bin'), 'utf8')).toBe('aaaa');
    expect((await cli('verify')).code).toBe(0);
  });

  it('a 300-byte file name in a manifest is refused when the manifest is read, before any chunk is fetched', async () => {
    const { proj, cli } = await projectWith({ [CJK.repeat(100)]: 'x'.repeat(1000) });
    const result = await cli('install');
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/invalid manifest .*300 bytes long, more than the 255/);
    await expect(readFile(join(proj, 'models', 'm', CJK.repeat(100)))).rejects.toThrow();
  });

  it('a path over PATH_MAX once under the root is refused before the download, exit 7, one short line', async () => {
    const deep = `${'d'.repeat(200)}/`.repeat(19) + 'weights.bin'; // about 3,830 bytes: fine alone, too long under the root
    const { cli } = await projectWith({ [deep]: 'w'.repeat(1000) }, `${'p'.repeat(200)}/${'q'.repeat(150)}`);
    const result = await cli('install');
    expect(result.code, result.stderr).toBe(7);
    expect(result.stderr).toMatch(/would be \d+ bytes long \(a file system allows 4095\)/);
    expect(result.stderr).toMatch(/nothing was downloaded/);
    expect(result.stderr.split('\n')[0]?.length).toBeLessThan(400);
  });

  it('a path: whose name leaves no room for the install suffix is a config error (exit 2)', async () => {
    const { cli } = await projectWith({ 'a.bin': 'a' }, 'x'.repeat(250));
    const result = await cli('lock');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/models\.yaml:\d+:\d+: .*folder name is 250 bytes/);
  });
});

describe('memory bombs (11.8)', () => {
  /** Run the CLI with a preload that records the child's peak RSS (MiB) when it exits. */
  async function measured(args: string[], cwd: string, cache: string) {
    const preload = join(cwd, 'rss-preload.mjs');
    const rssFile = join(cwd, 'rss.txt');
    await writeFile(preload, `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));\n`);
    const started = Date.now();
    const result = await runCli(args, cwd, cliEnv(cache, { NODE_OPTIONS: `--import=${preload}` }));
    const rssMiB = Math.round(Number(await readFile(rssFile, 'utf8')) / 1024);
    return { ...result, rssMiB, seconds: (Date.now() - started) / 1000 };
  }

  /** A registry with demo/bomb v1 whose manifest is `manifest` (raw text), and a project using it. */
  async function bomb(manifest: string) {
    const sandbox = await tempDir('xprim-bomb-');
    const registry = join(sandbox, 'registry');
    await mkdir(join(registry, 'data'), { recursive: true });
    const hash = sha(manifest);
    await writeFile(join(registry, 'data', hash), manifest);
    await writeFile(join(registry, 'models.json'), JSON.stringify({ demo: { bomb: { v1: { hash } } } }));
    const proj = join(sandbox, 'proj');
    await writeProject(proj, registry, { bomb: { model: 'demo/bomb', version: 'v1' } });
    return { proj, cache: join(sandbox, 'cache') };
  }

  it('a manifest of 950,000 tiny chunks (under the 64 MiB cap) is refused, in bounded memory', async () => {
    const n = 950_000;
    const chunk = 'ab'.repeat(32);
    const manifest = `{"total_size":${n * 64},"chunk_size":64,"chunks":[${`"${chunk}",`.repeat(n - 1)}"${chunk}"],"files":[{"path":"w.bin","size":${n * 64}}]}`;
    expect(manifest.length).toBeLessThan(64 * 1024 * 1024);
    const { proj, cache } = await bomb(manifest);
    const result = await measured(['install'], proj, cache);
    console.log(`950,000-chunk manifest: exit ${result.code}, peak RSS ${result.rssMiB} MiB, ${result.seconds}s`);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/invalid manifest .*lists 950000 chunks, more than the 262144/);
    expect(result.rssMiB).toBeLessThan(700);
  });

  it('beyond 4,096 chunks, chunks must average 64 KiB: 10,000 chunks of 64 bytes are refused, small models with small chunks are not', () => {
    const chunks = (n: number) => Array.from({ length: n }, () => 'ab'.repeat(32));
    expect(() => validateManifest({ total_size: 640_000, chunk_size: 64, chunks: chunks(10_000), files: [{ path: 'w', size: 640_000 }] }, 'm')).toThrow(/10000 chunks of 64 bytes on average/);
    expect(validateManifest({ total_size: 4_096_000, chunk_size: 1000, chunks: chunks(4096), files: [{ path: 'w', size: 4_096_000 }] }, 'm').chunks).toHaveLength(4096);
  });

  it('a manifest of 1,000,000 empty files is refused, in bounded memory and time', async () => {
    const n = 1_000_000;
    const files = Array.from({ length: n }, (_, i) => `{"path":"f${i}","size":0}`).join(',');
    const { proj, cache } = await bomb(`{"total_size":0,"chunk_size":1048576,"chunks":[],"files":[${files}]}`);
    const result = await measured(['lock'], proj, cache);
    console.log(`1,000,000-file manifest: exit ${result.code}, peak RSS ${result.rssMiB} MiB, ${result.seconds}s`);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/lists 1000000 files, more than the 100000/);
    expect(result.rssMiB).toBeLessThan(700);
  });

  it('at the limit (100,000 files) a lock is written and read back; CRLF is read as written; a big lock in another layout is refused', async () => {
    const n = 100_000;
    const files = Array.from({ length: n }, (_, i) => `{"path":"f${i}","size":0}`).join(',');
    const { proj, cache } = await bomb(`{"total_size":0,"chunk_size":1048576,"chunks":[],"files":[${files}]}`);
    const locked = await measured(['lock'], proj, cache);
    console.log(`100,000-file manifest: lock exit ${locked.code}, peak RSS ${locked.rssMiB} MiB, ${locked.seconds}s`);
    expect(locked.code, locked.stderr).toBe(0);
    expect(locked.rssMiB).toBeLessThan(500);
    const lockFile = join(proj, 'models.lock');
    const text = await readFile(lockFile, 'utf8');
    await writeFile(lockFile, text.replace(/\n/g, '\r\n'));
    const crlf = await measured(['list'], proj, cache);
    console.log(`${(text.length / 1e6).toFixed(1)} MB lock with CRLF: list exit ${crlf.code}, peak RSS ${crlf.rssMiB} MiB, ${crlf.seconds}s`);
    expect(crlf.code, crlf.stderr).toBe(0);
    expect(crlf.rssMiB).toBeLessThan(400);
    await writeFile(lockFile, text.replace('lockfileVersion: 1\n', 'lockfileVersion: 1\n# one extra comment\n'));
    const other = await measured(['install', '--frozen'], proj, cache);
    console.log(`${(text.length / 1e6).toFixed(1)} MB lock with a comment: exit ${other.code}, peak RSS ${other.rssMiB} MiB, ${other.seconds}s`);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/not in the layout xprim-models writes, and at \d+ bytes too big to read as general YAML/);
    expect(other.rssMiB).toBeLessThan(300);
  });

  it('a models.lock over 64 MiB is refused before it is read', async () => {
    const { proj, cache } = await bomb('{"total_size":0,"chunk_size":1,"chunks":[],"files":[]}');
    await writeFile(join(proj, 'models.lock'), Buffer.alloc(65 * 1024 * 1024, 0x20));
    const result = await measured(['install', '--frozen'], proj, cache);
    console.log(`65 MiB models.lock: exit ${result.code}, peak RSS ${result.rssMiB} MiB`);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/more than the 67108864 a models\.lock may have/);
    expect(result.rssMiB).toBeLessThan(200);
  });
});

describe('the line-by-line lock writer (11.8: 100,000 files in 0.4 s instead of 15 s)', () => {
  it('writes exactly what the YAML library writes, for plain values and for values that need quoting', () => {
    const word = fc.stringMatching(/^[a-z0-9][a-z0-9._:@+ -]{0,6}$/);
    const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
    const file = fc.record({ path: word, size: fc.nat(), sha256: fc.option(hex, { nil: undefined }) }).map((f) => (f.sha256 === undefined ? { path: f.path, size: f.size } : f));
    const entry = fc.record({ spec: hex, model: word, version: word, resolved: word, registry: fc.oneof(word, fc.constant('http://127.0.0.1:8080/reg')), manifest: hex, size: fc.nat(), files: fc.array(file, { maxLength: 4 }) });
    const lock = fc.dictionary(word, entry, { maxKeys: 4 }).map((models): Lockfile => ({ lockfileVersion: 1, models }));
    fc.assert(fc.property(lock, (l) => serializeLockfile(l) === serializeWithYaml(l)), { numRuns: 500 });
  });
});
