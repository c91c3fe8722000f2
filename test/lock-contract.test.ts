/**
 * Issue 10 J/K: the lock is a contract with the manifest it names. A hand-edited per-file sha256,
 * or a `manifest:` hash swapped for another model's valid manifest, is an invalid lock: every
 * command (install, install --verify, verify, doctor) says so the same way, exit 2 naming
 * models.lock and the line, and nothing is installed.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { contrastHashes } from '../src/util/hash-contrast.js';
import { craftRegistry, sha } from './support/craft.js';
import { cleanTemps, cliEnv, hasStackTrace, runCli, tempDir, writeProject } from './support/robustness.js';

afterAll(cleanTemps);

const A_WEIGHTS = Buffer.alloc(100_000, 7);
const B_WEIGHTS = Buffer.alloc(90_000, 9);

async function setup() {
  const sandbox = await tempDir('xprim-contract-');
  const registry = join(sandbox, 'registry');
  const hashes = await craftRegistry(registry, {
    'demo/a': { v1: { files: { 'a.onnx': A_WEIGHTS, 'config.json': '{"a":1}' } } },
    'demo/b': { v1: { files: { 'b.onnx': B_WEIGHTS } } },
  });
  const proj = join(sandbox, 'proj');
  await writeProject(proj, registry, { a: { model: 'demo/a', version: 'v1' } });
  const env = cliEnv(join(sandbox, 'cache'));
  const cli = (...args: string[]) => runCli(args, proj, env);
  return { sandbox, registry, hashes, proj, cli };
}

function expectInvalidLock(result: { code: number | null; stderr: string }, line: RegExp): void {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr).toMatch(line);
  expect(result.stderr).toMatch(/disagrees with its manifest/);
  expect(result.stderr).toMatch(/^hint: .*edited/m);
  expect(hasStackTrace(result.stderr)).toBe(false);
}

async function editLock(proj: string, from: string, to: string): Promise<void> {
  const file = join(proj, 'models.lock');
  const text = await readFile(file, 'utf8');
  expect(text).toContain(from);
  await writeFile(file, text.replace(from, to));
}

describe('lock vs manifest (issue 10 J/K)', () => {
  it('J: a per-file sha256 edited in models.lock: install, install --verify, verify and doctor all refuse it (exit 2, the line)', async () => {
    const { proj, cli } = await setup();
    expect((await cli('install')).code).toBe(0);
    const lockText = await readFile(join(proj, 'models.lock'), 'utf8');
    const lineNo = lockText.split('\n').findIndex((l) => l.includes('a.onnx')) + 1;
    await editLock(proj, sha(A_WEIGHTS), 'f'.repeat(64));
    const fileLine = new RegExp(`models\\.lock:${lineNo}: models\\.a disagrees .*files\\[0\\] "a\\.onnx": sha256`);
    expectInvalidLock(await cli('install', '--frozen'), fileLine);
    expectInvalidLock(await cli('install', '--frozen', '--verify'), fileLine);
    expectInvalidLock(await cli('verify'), fileLine);
    // list reaches the same verdict: not "installed" (path still names the folder, as for any stale model).
    const list = await cli('list', '--json');
    expect(JSON.parse(list.stdout).models.find((m: { name: string }) => m.name === 'a')).toMatchObject({ status: 'stale', detail: expect.stringMatching(/models\.lock disagrees/) });
    const doctor = await cli('doctor');
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/FAIL\s+lock .*disagrees with its manifest/);
    expect(doctor.stdout).toMatch(/Not ready/);
    // The installed files were not touched.
    expect(sha(await readFile(join(proj, 'models', 'a', 'a.onnx')))).toBe(sha(A_WEIGHTS));
  });

  it('J: an edit in the last character of a sha256 is shown so the two hashes differ on screen', async () => {
    const { proj, cli } = await setup();
    expect((await cli('install')).code).toBe(0);
    const real = sha(A_WEIGHTS);
    const edited = `${real.slice(0, 63)}${real[63] === '0' ? '1' : '0'}`;
    await editLock(proj, real, edited);
    const run = await cli('install', '--frozen');
    expect(run.code).toBe(2);
    const shown = /sha256 is (\S+) but the manifest says (\S+)/.exec(run.stderr);
    expect(shown?.[1]).not.toBe(shown?.[2]);
    expect(shown?.[1]).toBe(edited);
    expect(contrastHashes('abcdef0123456789', 'abcdef0123456780')).toEqual(['abcdef0123456789', 'abcdef0123456780']);
    expect(contrastHashes('a'.repeat(64), 'b'.repeat(64))).toEqual([`${'a'.repeat(12)}…`, `${'b'.repeat(12)}…`]);
  });

  it('J: the same verdict from a lock that is not in the canonical layout (full YAML parser, its line numbers)', async () => {
    const { proj, cli } = await setup();
    expect((await cli('install')).code).toBe(0);
    await editLock(proj, sha(A_WEIGHTS), 'e'.repeat(64));
    await editLock(proj, 'lockfileVersion: 1\n', 'lockfileVersion: 1\n# a comment someone added\n');
    const lockText = await readFile(join(proj, 'models.lock'), 'utf8');
    const lineNo = lockText.split('\n').findIndex((l) => l.includes('a.onnx')) + 1;
    expectInvalidLock(await cli('install', '--frozen'), new RegExp(`models\\.lock:${lineNo}: `));
    expectInvalidLock(await cli('verify'), new RegExp(`models\\.lock:${lineNo}: `));
  });

  it("K: a manifest hash swapped for another model's valid manifest: refused before anything is installed, and verify agrees", async () => {
    const { proj, hashes, cli } = await setup();
    expect((await cli('lock')).code).toBe(0);
    await editLock(proj, hashes['demo/a@v1'] as string, hashes['demo/b@v1'] as string);
    const fresh = await cli('install', '--frozen');
    expectInvalidLock(fresh, /models\.lock:\d+: models\.a disagrees with its manifest/);
    // Nothing of either model landed in the root.
    const root = await readdir(join(proj, 'models')).catch(() => []);
    expect(root.filter((f) => !f.startsWith('.'))).toEqual([]);
  });

  it('K: swapped after a good install: install keeps the good files, verify reaches the same verdict', async () => {
    const { proj, hashes, cli } = await setup();
    expect((await cli('install')).code).toBe(0);
    await editLock(proj, hashes['demo/a@v1'] as string, hashes['demo/b@v1'] as string);
    expectInvalidLock(await cli('install', '--frozen'), /models\.a disagrees/);
    expectInvalidLock(await cli('verify'), /models\.a disagrees/);
    expect(sha(await readFile(join(proj, 'models', 'a', 'a.onnx')))).toBe(sha(A_WEIGHTS));
    await expect(readFile(join(proj, 'models', 'a', 'b.onnx'))).rejects.toThrow();
  });

  it('an untouched lock still installs, verifies and is Ready (the check has no false alarm)', async () => {
    const { cli } = await setup();
    expect((await cli('install')).code).toBe(0);
    expect((await cli('install', '--frozen', '--verify')).code).toBe(0);
    expect((await cli('verify')).code).toBe(0);
    const doctor = await cli('doctor');
    expect(doctor.stdout).toMatch(/ok\s+lock .*in sync/);
  });
});
