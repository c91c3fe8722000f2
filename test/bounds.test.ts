/**
 * Bad input, bounded, and a clear error (issue 11 items 8, 11, 12): names that are
 * Object.prototype keys, paths that fit no file system, and inputs sized to exhaust memory.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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
