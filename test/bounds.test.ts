/**
 * Bad input, bounded, and a clear error (issue 11 items 8, 11, 12): names that are
 * Object.prototype keys, paths that fit no file system, and inputs sized to exhaust memory.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkRelativePath } from '../src/paths.js';
import { checkRelativePathForTest as runtimeCheck } from '../src/runtime/index.js';
import { craftRegistry } from './support/craft.js';
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

  it('the runtime copy gives the same answer as src/paths.ts, on fixed cases and on random paths', () => {
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

  it('path: ..vad is a name inside the root: config accepts it and install puts the model there', async () => {
    const { proj, cli } = await projectWith({ 'a.bin': 'aaaa' }, '..vad');
    const result = await cli('install');
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(proj, 'models', '..vad', 'a.bin'), 'utf8')).toBe('aaaa');
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
