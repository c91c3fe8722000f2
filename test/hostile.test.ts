/**
 * Hostile registries and destinations: every shared hostile case, crafted manifests a careful
 * attacker would try, non-JSON answers (captive portals), symlinks planted in the destination, and
 * malformed models.yaml / models.lock. Each fails with a clear one-line message and the right exit
 * code, writes nothing outside the install root (and the cache), and leaves no partial model.
 */
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { CONFORMANCE_REGISTRY, HOSTILE, cleanTemps, cliEnv, hasStackTrace, runCli, sha256, snapshot, tempDir, writeProject } from './support/robustness.js';

const servers: RegistryServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(cleanTemps);

/** Run an install of `model@v1` from `registry` inside a fresh sandbox; return the result and what changed. */
async function installIn(registry: string, model: string, extra: { path?: string; prepare?: (proj: string) => Promise<void> } = {}) {
  const sandbox = await tempDir('xprim-hostile-');
  const proj = join(sandbox, 'proj');
  await writeProject(proj, registry, { victim: { model, version: 'v1', ...(extra.path ? { path: extra.path } : {}) } });
  await extra.prepare?.(proj);
  const before = await snapshot(sandbox);
  const result = await runCli(['install'], proj, cliEnv(join(sandbox, 'cache')));
  const after = await snapshot(sandbox);
  // Allowed to change: the cache, and the project's own lock. Nothing else may appear or change.
  const changed = [...after].filter(([p, h]) => before.get(p) !== h && !p.startsWith('cache/') && p !== 'proj/models.lock' && p !== 'proj/models/');
  for (const p of before.keys()) if (!after.has(p)) changed.push([p, 'deleted']);
  return { result, changed: changed.map(([p]) => p), sandbox, proj };
}

function expectClearFailure(result: { code: number | null; stderr: string }, code: number, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(code);
  expect(result.stderr).toMatch(pattern);
  expect(result.stderr).toMatch(/^hint: /m);
  expect(hasStackTrace(result.stderr)).toBe(false);
  // One line of error, one of hint.
  expect(result.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
}

describe('shared hostile cases', () => {
  const cases: [string, number, RegExp][] = [
    ['traversal', 1, /invalid manifest .*"\.\." segment/],
    ['manifest-hash', 6, /does not match its hash/],
    ['chunk-corrupt', 6, /chunk [0-9a-f]{12} of victim: bytes do not match/],
    ['size-mismatch', 1, /invalid manifest .*total_size/],
    ['chunk-name', 1, /invalid manifest .*chunks\[\d+\].*not a 64-character/],
  ];
  for (const [name, code, pattern] of cases) {
    it.concurrent(`${name}: exit ${code}, nothing written outside the root, no partial model`, async () => {
      const { result, changed } = await installIn(join(HOSTILE, name), `bad/${name}`);
      expectClearFailure(result, code, pattern);
      expect(changed).toEqual([]);
    });
  }

  it('the same cases over HTTP behave the same (served by the test server)', async () => {
    const server = await startRegistryServer({ root: join(HOSTILE, 'traversal') });
    servers.push(server);
    const { result, changed } = await installIn(server.url, 'bad/traversal');
    expectClearFailure(result, 1, /invalid manifest .*from http:\/\/127\.0\.0\.1/);
    expect(changed).toEqual([]);
  });
});

/** A registry folder holding `evil/m v1` with this manifest (object or raw text) and these chunks. */
async function craft(manifest: unknown, chunks: Buffer[] = [], raw?: string): Promise<string> {
  const dir = await tempDir('xprim-craft-');
  await mkdir(join(dir, 'data'), { recursive: true });
  for (const c of chunks) await writeFile(join(dir, 'data', sha256(c)), c);
  const text = raw ?? JSON.stringify(manifest);
  const hash = sha256(text);
  await writeFile(join(dir, 'data', hash), text);
  await writeFile(join(dir, 'models.json'), JSON.stringify({ evil: { m: { v1: { hash } } } }));
  return dir;
}

const A = Buffer.from('hello world\n');
const chunkA = sha256(A);

describe('crafted manifests are refused whole (exit 1) before anything is written', () => {
  const cases: [string, unknown, RegExp][] = [
    ['absolute path', { total_size: 12, chunk_size: 12, chunks: [chunkA], files: [{ path: '/tmp/evil', size: 12 }] }, /path is absolute/],
    ['dot-dot segment', { total_size: 12, chunk_size: 12, chunks: [chunkA], files: [{ path: 'a/../../evil', size: 12 }] }, /"\.\." segment/],
    ['dot segment', { total_size: 12, chunk_size: 12, chunks: [chunkA], files: [{ path: './evil', size: 12 }] }, /"\." segment/],
    ['backslash', { total_size: 12, chunk_size: 12, chunks: [chunkA], files: [{ path: '..\\evil', size: 12 }] }, /backslash/],
    ['drive letter', { total_size: 12, chunk_size: 12, chunks: [chunkA], files: [{ path: 'C:evil', size: 12 }] }, /drive letter/],
    ['NUL byte', { total_size: 12, chunk_size: 12, chunks: [chunkA], files: [{ path: 'a\u0000b', size: 12 }] }, /NUL/],
    ['duplicate path', { total_size: 12, chunk_size: 12, chunks: [chunkA], files: [{ path: 'a', size: 6 }, { path: 'a', size: 6 }] }, /appears twice/],
    ['case-duplicate path', { total_size: 12, chunk_size: 12, chunks: [chunkA], files: [{ path: 'A', size: 6 }, { path: 'a', size: 6 }] }, /appears twice/],
    ['file and folder of one name', { total_size: 12, chunk_size: 12, chunks: [chunkA], files: [{ path: 'a', size: 6 }, { path: 'a/b', size: 6 }] }, /both a file and a folder/],
    ['absurd size', { total_size: 2 ** 60, chunk_size: 12, chunks: [chunkA], files: [{ path: 'a', size: 2 ** 60 }] }, /total_size/],
    ['huge but plausible size, few chunks', { total_size: 2 ** 45, chunk_size: 12, chunks: [chunkA], files: [{ path: 'a', size: 2 ** 45 }] }, /1 chunks of 12 bytes cannot hold total_size 35184372088832/],
    ['negative size', { total_size: 12, chunk_size: 12, chunks: [chunkA], files: [{ path: 'a', size: -4 }, { path: 'b', size: 16 }] }, /size must be a non-negative/],
    ['fractional size', { total_size: 12, chunk_size: 12, chunks: [chunkA], files: [{ path: 'a', size: 11.5 }, { path: 'b', size: 0.5 }] }, /size must be a non-negative/],
    ['fewer chunk bytes than the files need', { total_size: 24, chunk_size: 12, chunks: [chunkA], files: [{ path: 'a', size: 24 }] }, /1 chunks of 12 bytes cannot hold total_size 24/],
    ['chunk_sizes not matching', { total_size: 12, chunk_size: 12, chunks: [chunkA], chunk_sizes: [10], files: [{ path: 'a', size: 12 }] }, /chunks hold 10 bytes/],
    ['uppercase chunk hash', { total_size: 12, chunk_size: 12, chunks: [chunkA.toUpperCase()], files: [{ path: 'a', size: 12 }] }, /not a 64-character lowercase sha256/],
    ['short chunk hash', { total_size: 12, chunk_size: 12, chunks: [chunkA.slice(0, 40)], files: [{ path: 'a', size: 12 }] }, /not a 64-character lowercase sha256/],
    ['uppercase file sha256', { total_size: 12, chunk_size: 12, chunks: [chunkA], files: [{ path: 'a', size: 12, sha256: chunkA.toUpperCase() }] }, /sha256 is not 64 lowercase hex/],
    ['string sizes', { total_size: '12', chunk_size: 12, chunks: [chunkA], files: [{ path: 'a', size: '12' }] }, /total_size/],
    ['not an object', [1, 2, 3], /not a JSON object/],
  ];
  for (const [name, manifest, pattern] of cases) {
    it.concurrent(name, async () => {
      const registry = await craft(manifest, [A]);
      const { result, changed } = await installIn(registry, 'evil/m');
      expectClearFailure(result, 1, pattern);
      expect(changed).toEqual([]);
    });
  }

  it('a manifest that is an HTML page (with a matching hash) is "not JSON"', async () => {
    const registry = await craft(undefined, [], '<!DOCTYPE html><html><body>Sign in</body></html>');
    const { result, changed } = await installIn(registry, 'evil/m');
    expectClearFailure(result, 1, /not JSON/);
    expect(changed).toEqual([]);
  });
});

describe('non-JSON answers over HTTP', () => {
  it('a captive-portal page for models.json: exit 1 with a hint about proxies/portals', async () => {
    const server = await startRegistryServer({ root: CONFORMANCE_REGISTRY, fault: ({ path }) => (path === '/models.json' ? { kind: 'html' } : undefined) });
    servers.push(server);
    const { result, changed } = await installIn(server.url, 'demo/tiny');
    expectClearFailure(result, 1, /models\.json: not JSON/);
    expect(result.stderr).toMatch(/captive portal/);
    expect(changed).toEqual([]);
  });

  it('a captive-portal page instead of the manifest: exit 6 (its hash cannot match)', async () => {
    const server = await startRegistryServer({ root: CONFORMANCE_REGISTRY, fault: ({ path }) => (path.startsWith('/data/') ? { kind: 'html' } : undefined) });
    servers.push(server);
    const { result, changed } = await installIn(server.url, 'demo/tiny');
    expectClearFailure(result, 6, /manifest .* does not match its hash/);
    expect(changed).toEqual([]);
  });

  it('a captive-portal page instead of a chunk: exit 6 after the bounded retries, no partial model', async () => {
    const manifest = JSON.parse(await readFile(join(CONFORMANCE_REGISTRY, 'models.json'), 'utf8')).demo.tiny.v1.hash as string;
    const server = await startRegistryServer({ root: CONFORMANCE_REGISTRY, fault: ({ path }) => (path.startsWith('/data/') && path !== `/data/${manifest}` ? { kind: 'html' } : undefined) });
    servers.push(server);
    const { result, changed } = await installIn(server.url, 'demo/tiny');
    expectClearFailure(result, 6, /chunk [0-9a-f]{12} of victim/);
    expect(changed).toEqual([]);
  });
});

describe('symlinks planted in the destination', () => {
  it('models/<name> is a symlink to a folder outside: the outside folder is untouched', async () => {
    const outside = await tempDir('xprim-outside-');
    await writeFile(join(outside, 'keep.txt'), 'precious\n');
    const before = await snapshot(outside);
    const { result, proj } = await installIn(CONFORMANCE_REGISTRY, 'demo/tiny', {
      prepare: async (p) => {
        await mkdir(join(p, 'models'), { recursive: true });
        await symlink(outside, join(p, 'models', 'victim'));
      },
    });
    expect(await snapshot(outside)).toEqual(before);
    // Either refused, or the link replaced by a real folder: never written through.
    if (result.code === 0) {
      const { lstat } = await import('node:fs/promises');
      expect((await lstat(join(proj, 'models', 'victim'))).isSymbolicLink()).toBe(false);
    } else {
      expect(result.code).toBe(7);
    }
  });

  it('a parent folder of `path:` is a symlink to outside: exit 7, nothing written there', async () => {
    const outside = await tempDir('xprim-outside-');
    const { result } = await installIn(CONFORMANCE_REGISTRY, 'demo/tiny', {
      path: 'sub/victim',
      prepare: async (p) => {
        await mkdir(join(p, 'models'), { recursive: true });
        await symlink(outside, join(p, 'models', 'sub'));
      },
    });
    expectClearFailure(result, 7, /refusing to install through .*sub: it is a symlink/);
    expect([...(await snapshot(outside)).keys()]).toEqual([]);
  });

  it('the install root itself is a symlink: allowed (a user choice), files land in its target', async () => {
    const elsewhere = await tempDir('xprim-elsewhere-');
    const { result } = await installIn(CONFORMANCE_REGISTRY, 'demo/tiny', {
      prepare: async (p) => symlink(elsewhere, join(p, 'models')),
    });
    expect(result.code, result.stderr).toBe(0);
    expect([...(await snapshot(elsewhere)).keys()]).toContain('victim/model.bin');
  });
});

describe('malformed models.yaml and models.lock: exit 2 with file:line:col', () => {
  it('models.yaml with a syntax error', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'models.yaml'), 'version: 1\nregistry: ./r\nmodels:\n  vad: [unclosed\n');
    const result = await runCli(['install'], dir, cliEnv(join(dir, 'cache')));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/models\.yaml:\d+:\d+/);
    expect(hasStackTrace(result.stderr)).toBe(false);
  });

  it('models.yaml with a schema error names the line of the bad value', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'models.yaml'), 'version: 1\nregistry: ./r\nmodels:\n  vad:\n    model: 42\n    version: v1\n');
    const result = await runCli(['install'], dir, cliEnv(join(dir, 'cache')));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/models\.yaml:5:\d+/);
  });

  it('models.lock that was hand-edited into nonsense', async () => {
    const dir = await tempDir();
    await writeProject(dir, CONFORMANCE_REGISTRY, { tiny: { model: 'demo/tiny', version: 'v1' } });
    await writeFile(join(dir, 'models.lock'), 'lockfileVersion: 1\nmodels:\n  tiny:\n    manifest: ../../etc/passwd\n');
    const result = await runCli(['install', '--frozen'], dir, cliEnv(join(dir, 'cache')));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/models\.lock:\d+:\d+/);
    expect(hasStackTrace(result.stderr)).toBe(false);
  });
});
