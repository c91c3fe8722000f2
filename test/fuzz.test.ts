/**
 * Property-based fuzzing (fast-check) of everything read from outside: manifests, models.yaml and
 * models.lock text, plus full CLI runs on mutated manifests. Properties: every failure is a
 * ModelsError (no crash, no stack trace); whatever is accepted is safe to lay out under a root.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/project/config.js';
import { ModelsError } from '../src/util/errors.js';
import { parseLockfile } from '../src/project/lockfile.js';
import { parseManifest } from '../src/registry/manifest.js';
import { CONFORMANCE_REGISTRY, cleanTemps, cliEnv, hasStackTrace, runCli, sha256, snapshot, tempDir, writeProject } from './support/robustness.js';

afterAll(cleanTemps);

const index = JSON.parse(await readFile(join(CONFORMANCE_REGISTRY, 'models.json'), 'utf8')) as Record<string, Record<string, Record<string, { hash: string }>>>;
const edgeHash = index.demo?.edge?.v1?.hash as string;
const edgeManifest = JSON.parse(await readFile(join(CONFORMANCE_REGISTRY, 'data', edgeHash), 'utf8')) as Record<string, unknown>;

/** Either a value or a ModelsError; anything else thrown fails the property. */
function outcome<T>(fn: () => T): T | ModelsError {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ModelsError) return error;
    throw new Error(`not a ModelsError: ${String(error)}`, { cause: error });
  }
}

const hostileString = fc.oneof(
  fc.string(),
  fc.constantFrom('..', '.', '/etc/passwd', 'a/../../b', 'a//b', 'a\\b', 'C:x', 'a\u0000b', 'con', 'A', 'a/b/', '', ' ', 'ä/ö', 'x'.repeat(300)),
);
const hostileNumber = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-1, 0, 2 ** 53, 2 ** 60, Number.MAX_VALUE, 1e308), fc.bigInt().map(String));
const anyValue = fc.oneof(hostileString, hostileNumber, fc.jsonValue(), fc.constant(null));

/** A manifest mutated in one to three places: a field replaced, a file entry changed, chunks altered. */
const mutatedManifest = fc
  .array(
    fc.oneof(
      fc.record({ kind: fc.constant('field'), key: fc.constantFrom('total_size', 'chunk_size', 'chunks', 'files', 'chunk_sizes', 'extra'), value: anyValue }),
      fc.record({ kind: fc.constant('file'), index: fc.nat(6), key: fc.constantFrom('path', 'size', 'sha256'), value: anyValue }),
      fc.record({ kind: fc.constant('chunk'), index: fc.nat(8), value: anyValue }),
      fc.record({ kind: fc.constant('dupe'), index: fc.nat(6) }),
    ),
    { minLength: 1, maxLength: 3 },
  )
  .map((mutations) => {
    const m = structuredClone(edgeManifest);
    for (const mu of mutations) {
      const files: unknown = m.files;
      const chunks: unknown = m.chunks;
      if (mu.kind === 'field') m[mu.key] = mu.value;
      else if (mu.kind === 'file' && Array.isArray(files) && files.length > 0) {
        const f: unknown = files[mu.index % files.length];
        if (f && typeof f === 'object') (f as Record<string, unknown>)[mu.key] = mu.value;
      } else if (mu.kind === 'chunk' && Array.isArray(chunks) && chunks.length > 0) chunks[mu.index % chunks.length] = mu.value;
      else if (mu.kind === 'dupe' && Array.isArray(files) && files.length > 0) files.push(structuredClone(files[mu.index % files.length]));
    }
    return JSON.stringify(m);
  });

describe('manifests', () => {
  it('mutated manifests: a ModelsError, or a layout that stays inside the root and adds up', () => {
    const root = resolve('/fuzz-root/model');
    fc.assert(
      fc.property(mutatedManifest, (text) => {
        const bytes = Buffer.from(text);
        const result = outcome(() => parseManifest(bytes, sha256(bytes), 'fuzz'));
        if (result instanceof ModelsError) {
          expect(result.exitCode).toBe(1);
          expect(result.message).not.toContain('\n');
          return;
        }
        let fileTotal = 0;
        for (const f of result.files) {
          const dest = resolve(root, f.path);
          const rel = relative(root, dest);
          expect(rel.startsWith('..') || isAbsolute(rel) || rel === '').toBe(false);
          expect(Number.isSafeInteger(f.size) && f.size >= 0).toBe(true);
          fileTotal += f.size;
        }
        expect(fileTotal).toBe(result.totalSize);
        expect(result.chunks.reduce((s, c) => s + c.size, 0)).toBe(result.totalSize);
        for (const c of result.chunks) expect(c.hash).toMatch(/^[0-9a-f]{64}$/);
      }),
      { numRuns: 800, seed: 42 },
    );
  });

  it('arbitrary bytes: a ModelsError, never a crash', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), fc.string().map((s) => Buffer.from(s)), fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null'))), (bytes) => {
        const result = outcome(() => parseManifest(bytes, sha256(bytes), 'fuzz'));
        if (!(result instanceof ModelsError)) expect(result.totalSize).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 500, seed: 7 },
    );
  });

  it('bytes that do not match the address are always an integrity error (exit 6)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const result = outcome(() => parseManifest(bytes, sha256('something else'), 'fuzz'));
        expect(result).toBeInstanceOf(ModelsError);
        expect((result as ModelsError).exitCode).toBe(6);
      }),
      { numRuns: 100, seed: 3 },
    );
  });
});

/** Text mutations: insert, delete or replace a character, or splice in a YAML-significant token. */
function mutatedText(base: string) {
  const token = fc.constantFrom(':', '-', '[', ']', '{', '}', '"', "'", '#', '\n', '  ', '\t', '*a', '&a', '!!binary', '<<: *a', '\u0000', '\uFEFF', '?', '|', '>', '%YAML 1.1\n', '---\n', '...\n', 'ä');
  const edit = fc.record({ at: fc.nat(base.length), del: fc.nat(4), insert: fc.oneof(token, fc.string({ maxLength: 6 })) });
  return fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
    let text = base;
    for (const e of edits) {
      const at = e.at % (text.length + 1);
      text = text.slice(0, at) + e.insert + text.slice(at + e.del);
    }
    return text;
  });
}

describe('models.yaml and models.lock text', () => {
  let lockText: string;
  const yamlText = [
    'version: 1',
    'registry: https://models.example.com',
    'mirrors: [https://mirror.example.com]',
    'root: models',
    'models:',
    '  vad:',
    '    model: silero/vad',
    '    version: latest',
    '  ocr:',
    '    model: paddle/ocr',
    '    version: v4-int8',
    '    path: vision/ocr',
    '    tags: [vision]',
    '    when: { os: [linux, darwin], arch: [x64, arm64] }',
    '',
  ].join('\n');

  beforeAll(async () => {
    const dir = await tempDir();
    await writeProject(dir, CONFORMANCE_REGISTRY, { tiny: { model: 'demo/tiny', version: 'latest' }, edge: { model: 'demo/edge', version: 'v1' } });
    const result = await runCli(['lock'], dir, cliEnv(join(dir, 'cache')));
    expect(result.code, result.stderr).toBe(0);
    lockText = await readFile(join(dir, 'models.lock'), 'utf8');
    expect(outcome(() => parseLockfile(lockText, 'models.lock'))).not.toBeInstanceOf(ModelsError);
  });

  it('mutated models.yaml: parsed, or a usage error (exit 2) naming file:line:col', () => {
    expect(outcome(() => parseConfig(yamlText, '/p/models.yaml'))).not.toBeInstanceOf(ModelsError);
    fc.assert(
      fc.property(fc.oneof(mutatedText(yamlText), fc.string({ maxLength: 200 })), (text) => {
        const result = outcome(() => parseConfig(text, '/p/models.yaml'));
        if (!(result instanceof ModelsError)) {
          // Accepted: every install path stays inside the root.
          for (const m of result.models) {
            const rel = relative(result.root, resolve(result.root, m.path));
            expect(rel.startsWith('..') || isAbsolute(rel)).toBe(false);
          }
          return;
        }
        expect(result.exitCode).toBe(2);
        expect(result.message).toMatch(/models\.yaml:\d+:\d+/);
      }),
      { numRuns: 600, seed: 5 },
    );
  });

  it('mutated models.lock: parsed, or a usage error (exit 2) naming file:line:col', () => {
    fc.assert(
      fc.property(fc.oneof(mutatedText(lockText), fc.string({ maxLength: 200 })), (text) => {
        const result = outcome(() => parseLockfile(text, '/p/models.lock'));
        if (result instanceof ModelsError) {
          expect(result.exitCode).toBe(2);
          expect(result.message).toMatch(/models\.lock(:\d+:\d+)?/);
        } else {
          for (const m of Object.values(result.models)) expect(m.manifest).toMatch(/^[0-9a-f]{64}$/);
        }
      }),
      { numRuns: 600, seed: 6 },
    );
  });
});

describe('full CLI runs on mutated manifests', () => {
  it('never crash with a stack trace and never write outside the root', async () => {
    const samples = fc.sample(mutatedManifest, { numRuns: 10, seed: 99 });
    const sandbox = await tempDir('xprim-fuzz-cli-');
    const registry = join(sandbox, 'registry');
    await mkdir(join(registry, 'data'), { recursive: true });
    // The real chunks, so that a mutation that keeps the manifest valid installs for real.
    for (const chunk of edgeManifest.chunks as string[]) await writeFile(join(registry, 'data', chunk), await readFile(join(CONFORMANCE_REGISTRY, 'data', chunk)));
    const versions: Record<string, { hash: string }> = {};
    for (const [i, text] of samples.entries()) {
      const hash = sha256(text);
      await writeFile(join(registry, 'data', hash), text);
      versions[`v${i}`] = { hash };
    }
    await writeFile(join(registry, 'models.json'), JSON.stringify({ fuzz: { m: versions } }));
    const runs = await Promise.all(
      samples.map(async (_, i) => {
        const proj = join(sandbox, `proj${i}`);
        await writeProject(proj, registry, { m: { model: 'fuzz/m', version: `v${i}` } });
        return { proj, result: await runCli(['install'], proj, cliEnv(join(sandbox, `cache${i}`))) };
      }),
    );
    const codes = new Set<number | null>();
    for (const { result } of runs) {
      codes.add(result.code);
      expect([0, 1, 3, 6, 7]).toContain(result.code);
      expect(hasStackTrace(result.stderr + result.stdout)).toBe(false);
      if (result.code !== 0) expect(result.stderr).toMatch(/^error: .*\nhint: /);
    }
    // Nothing outside the projects, caches and the registry.
    const top = [...(await snapshot(sandbox)).keys()].filter((p) => !/^(proj\d+|cache\d+|registry)(\/|$)/.test(p));
    expect(top).toEqual([]);
    // Inside each project: only models.yaml, models.lock and the root.
    for (const { proj } of runs) {
      const entries = [...(await snapshot(proj)).keys()].filter((p) => !/^(models\.yaml|models\.lock|models\/.*|models\/)$/.test(p));
      expect(entries).toEqual([]);
    }
    expect(codes.size).toBeGreaterThanOrEqual(1);
  });
});
