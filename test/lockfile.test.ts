import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/project/config.js';
import { ModelsError } from '../src/util/errors.js';
import { sha256 } from '../src/util/hash.js';
import { lockStatus, parseLockfile, readLockfile, type LockedModel, type Lockfile } from '../src/project/lockfile.js';
import { readCanonical } from '../src/project/lock-canonical-reader.js';
import { specHash } from '../src/project/lock-format.js';
import { serializeLockfile, writeLockfile } from '../src/project/lock-writer.js';

const H1 = 'a'.repeat(64);
const H2 = '0123456789abcdef'.repeat(4);
const FILE = '/proj/models.lock';

function locked(model: string, version: string, registry: string, extra: Partial<LockedModel> = {}): LockedModel {
  return {
    spec: specHash({ registry, model, version }),
    model,
    version,
    resolved: version === 'latest' ? 'v5' : version,
    registry,
    manifest: H1,
    size: 12,
    files: [
      { path: 'z_first.onnx', size: 10, sha256: H2 },
      { path: 'a/second.txt', size: 2 },
    ],
    ...extra,
  };
}

const sample: Lockfile = {
  lockfileVersion: 1,
  models: {
    vad: locked('silero/vad', 'latest', 'https://models.example.com'),
    ocr: locked('paddle/ocr', '1.0', './registry', { files: [{ path: 'ocr.onnx', size: 12, sha256: H1 }] }),
  },
};

const EXPECTED = `# models.lock — written by xprim-models; do not edit by hand

lockfileVersion: 1
models:
  ocr:
    spec: ${specHash({ registry: './registry', model: 'paddle/ocr', version: '1.0' })}
    model: paddle/ocr
    version: "1.0"
    resolved: "1.0"
    registry: ./registry
    manifest: ${H1}
    size: 12
    files:
      - { path: ocr.onnx, size: 12, sha256: ${H1} }
  vad:
    spec: ${specHash({ registry: 'https://models.example.com', model: 'silero/vad', version: 'latest' })}
    model: silero/vad
    version: latest
    resolved: v5
    registry: https://models.example.com
    manifest: ${H1}
    size: 12
    files:
      - { path: z_first.onnx, size: 10, sha256: ${H2} }
      - { path: a/second.txt, size: 2 }
`;

function reversedKeys<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).reverse()) as T;
}

describe('specHash', () => {
  it('is the sha256 of a canonical JSON of registry, model and version', () => {
    const a = specHash({ registry: 'r', model: 'g/m', version: 'v1' });
    expect(a).toBe(sha256('{"model":"g/m","registry":"r","version":"v1"}'));
    expect(specHash(reversedKeys({ registry: 'r', model: 'g/m', version: 'v1' }))).toBe(a);
    expect(specHash({ registry: 'r2', model: 'g/m', version: 'v1' })).not.toBe(a);
    expect(specHash({ registry: 'r', model: 'g/m', version: 'v2' })).not.toBe(a);
    // No ambiguity from concatenation.
    expect(specHash({ registry: 'r', model: 'g/m', version: 'v1x' })).not.toBe(specHash({ registry: 'r', model: 'g/mv', version: '1x' }));
  });
});

describe('serializeLockfile', () => {
  it('writes the SPEC layout: sorted models, SPEC key order, flow-map files in manifest order', () => {
    expect(serializeLockfile(sample)).toBe(EXPECTED);
  });

  it('is deterministic whatever the key order of the input', () => {
    const shuffled: Lockfile = reversedKeys({
      lockfileVersion: 1,
      models: Object.fromEntries(
        Object.entries(sample.models)
          .reverse()
          .map(([name, m]) => [name, { ...reversedKeys(m), files: m.files.map((f) => reversedKeys(f)) }]),
      ),
    });
    expect(serializeLockfile(shuffled)).toBe(EXPECTED);
  });

  it('round-trips both ways', () => {
    const text = serializeLockfile(sample);
    expect(parseLockfile(text, FILE)).toEqual(sample);
    expect(serializeLockfile(parseLockfile(text, FILE))).toBe(text);
    const empty: Lockfile = { lockfileVersion: 1, models: {} };
    expect(parseLockfile(serializeLockfile(empty), FILE)).toEqual(empty);
  });

  it('round-trips arbitrary locks (property)', () => {
    const hash = fc.stringMatching(/^[0-9a-f]{64}$/);
    const text = fc.string({ minLength: 1, maxLength: 30, unit: 'binary' });
    const segment = fc.stringMatching(/^[A-Za-z0-9 _.,:#&*!?{}[\]'"-]{1,12}$/).filter((s) => s !== '.' && s !== '..');
    const file = fc.record(
      { path: fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/')).filter((p) => !/^[a-zA-Z]:/.test(p)), size: fc.nat(1e6), sha256: hash },
      { requiredKeys: ['path', 'size'] },
    );
    const model = fc
      .record({ model: text, version: text, resolved: text, registry: text, manifest: hash, files: fc.uniqueArray(file, { maxLength: 4, selector: (f) => f.path.toLowerCase() }) })
      .map((m) => ({ ...m, spec: specHash(m), size: m.files.reduce((sum, f) => sum + f.size, 0) }));
    const lock = fc.dictionary(fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/), model, { maxKeys: 4 }).map((models) => ({ lockfileVersion: 1 as const, models }));
    fc.assert(
      fc.property(lock, (x) => {
        const out = serializeLockfile(x);
        expect(parseLockfile(out, FILE)).toEqual(x);
        expect(serializeLockfile(parseLockfile(out, FILE))).toBe(out);
      }),
      { numRuns: 100 },
    );
  });

  it('reads the canonical shape without the YAML parser, exactly as YAML would (property)', async () => {
    const YAML = await import('yaml');
    const hash = fc.stringMatching(/^[0-9a-f]{64}$/);
    // Scalars a lock really holds, including ones YAML reads as numbers, booleans or null unless quoted.
    const scalar = fc.oneof(
      fc.stringMatching(/^[A-Za-z0-9_./@+:-]{1,16}$/),
      fc.constantFrom('1.0', '1e3', '0x1A', 'true', 'null', '~', '.inf', 'v1', '2.0.1', 'https://h.example:8443/r', './demo/registry', 'a: b'),
    );
    const segment = fc.stringMatching(/^[A-Za-z0-9_.-]{1,10}$/).filter((x) => x !== '.' && x !== '..');
    const file = fc.record(
      { path: fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/')), size: fc.nat(1e9), sha256: hash },
      { requiredKeys: ['path', 'size'] },
    );
    const model = fc
      .record({ model: scalar, version: scalar, resolved: scalar, registry: scalar, manifest: hash, files: fc.uniqueArray(file, { maxLength: 5, selector: (f) => f.path.toLowerCase() }) })
      .map((m) => ({ ...m, spec: specHash(m), size: m.files.reduce((sum, f) => sum + f.size, 0) }));
    const lock = fc.dictionary(fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,12}$/), model, { maxKeys: 3 }).map((models) => ({ lockfileVersion: 1 as const, models }));
    fc.assert(
      fc.property(lock, (x) => {
        const text = serializeLockfile(x);
        const parsed = parseLockfile(text, FILE);
        expect(parsed).toEqual(x);
        expect(parsed).toEqual(JSON.parse(JSON.stringify(YAML.parse(text))));
        // The quick reader either declines (a quoted or unusual scalar) or agrees exactly.
        const quick = readCanonical(text);
        if (quick) expect(quick).toEqual(x);
        // Written unquoted (YAML reads it back as the same string): then the quick reader must take it.
        const plain = (v: string, pattern: RegExp) => pattern.test(v) && YAML.parse(v) === v;
        const plainOnly = Object.entries(x.models).every(
          ([name, m]) =>
            plain(name, /^[a-z0-9][a-z0-9._-]*$/) &&
            [m.model, m.version, m.resolved, m.registry].every((v) => plain(v, /^[A-Za-z0-9_./][A-Za-z0-9_./@+:-]*[A-Za-z0-9_./@+-]$|^[A-Za-z0-9_]$/)) &&
            m.files.every((f) => plain(f.path, /^[A-Za-z0-9_][A-Za-z0-9_./@+-]*$/)),
        );
        if (plainOnly) expect(quick).toBeDefined();
      }),
      { numRuns: 200 },
    );
  });

  it('a lock in the canonical shape but invalid still gets file:line:col', () => {
    const good = serializeLockfile({ lockfileVersion: 1, models: { a: locked('g/m', 'v1', 'https://r.example', {}) } });
    // Sizes that do not add up: the quick reader refuses, the full parser names the line.
    expect(readCanonical(good)).toEqual(parseLockfile(good, FILE));
    const badSize = good.replace(/^ {4}size: \d+$/m, '    size: 999999');
    expect(() => parseLockfile(badSize, FILE)).toThrow(/models\.lock:\d+:\d+: models\.a\.size/);
    // A plain 1.0 is a number to YAML, not a version string.
    const numeric = good.replace(/^ {4}version: v1$/m, '    version: 1.0');
    expect(() => parseLockfile(numeric, FILE)).toThrow(/models\.lock:\d+:\d+: models\.a\.version: expected a non-empty string/);
  });

  it('quotes strings that YAML would read as something else, and never folds long lines', () => {
    const registry = `https://models.example.com/${'deep/'.repeat(30)}registry`;
    const lock: Lockfile = {
      lockfileVersion: 1,
      models: {
        t: locked('g/m', 'true', registry, {
          resolved: '123e4567',
          files: [{ path: `${'long-name-'.repeat(20)}: # x.bin`, size: 12 }],
        }),
      },
    };
    const text = serializeLockfile(lock);
    expect(parseLockfile(text, FILE)).toEqual(lock);
    expect(text).toContain(`registry: ${registry}\n`);
    expect(text.split('\n').filter((l) => l.includes('{ path:'))).toHaveLength(1);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('omits an absent sha256 rather than writing a null', () => {
    const text = serializeLockfile({ lockfileVersion: 1, models: { x: locked('g/m', 'v1', 'r', { files: [{ path: 'f', size: 12, sha256: undefined }] }) } });
    expect(text).toContain('- { path: f, size: 12 }\n');
    expect(parseLockfile(text, FILE).models.x?.files[0]).toEqual({ path: 'f', size: 12 });
  });
});

function lockError(text: string): ModelsError {
  try {
    parseLockfile(text, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(ModelsError);
    return error as ModelsError;
  }
  throw new Error('expected parseLockfile to fail');
}

function expectLockError(text: string, line: number, column: number, gist: string): void {
  const error = lockError(text);
  expect(error.code).toBe('E_LOCKFILE');
  expect(error.exitCode).toBe(2);
  expect(error.message.startsWith(`${FILE}:${line}:${column}: `), error.message).toBe(true);
  expect(error.message).toContain(gist);
  expect([error.file, error.line, error.column]).toEqual([FILE, line, column]);
  expect(error.hint).toBeTruthy();
}

describe('parseLockfile: strict', () => {
  // Line numbers below refer to EXPECTED: line 5 "  ocr:", 6 spec, 7 model, 8 version, 9 resolved,
  // 10 registry, 11 manifest, 12 size, 13 files, 14 the ocr file entry (its path value at column 17).
  const edit = (from: string, to: string) => {
    expect(EXPECTED).toContain(from);
    return EXPECTED.replace(from, to);
  };

  it('a manifest that is not 64 lowercase hex', () => {
    expectLockError(edit(`manifest: ${H1}`, `manifest: ${H1.toUpperCase()}`), 11, 15, 'models.ocr.manifest: expected 64 lowercase hex');
    expectLockError(edit(`manifest: ${H1}`, 'manifest: abc'), 11, 15, 'expected 64 lowercase hex');
  });

  it('a missing field', () => {
    expectLockError(edit('    resolved: "1.0"\n', ''), 5, 3, 'models.ocr: missing required key "resolved"');
    expectLockError(edit('{ path: ocr.onnx, size: 12,', '{ path: ocr.onnx,'), 14, 9, 'models.ocr.files[0]: missing required key "size"');
  });

  it('a negative or non-integer size', () => {
    expectLockError(edit('    size: 12\n    files:\n      - { path: ocr', '    size: -12\n    files:\n      - { path: ocr'), 12, 11, 'models.ocr.size: expected a non-negative integer');
    expectLockError(edit('path: ocr.onnx, size: 12,', 'path: ocr.onnx, size: 1.5,'), 14, 33, 'models.ocr.files[0].size');
  });

  it('a file path that fails checkRelativePath, or appears twice', () => {
    expectLockError(edit('path: ocr.onnx', 'path: ../ocr.onnx'), 14, 17, 'path has a ".." segment');
    expectLockError(edit('path: ocr.onnx', 'path: /etc/passwd'), 14, 17, 'path is absolute');
    expectLockError(
      edit('      - { path: ocr.onnx, size: 12, sha256: ', '      - { path: OCR.onnx, size: 0 }\n      - { path: ocr.onnx, size: 12, sha256: '),
      15,
      17,
      'appears twice',
    );
  });

  it('sizes that do not add up, and a spec that does not match its inputs', () => {
    expectLockError(edit('path: ocr.onnx, size: 12,', 'path: ocr.onnx, size: 11,'), 12, 11, 'the files add up to 11');
    expectLockError(edit('    registry: ./registry', '    registry: ./other'), 6, 11, 'models.ocr.spec does not match');
  });

  it('unknown keys, bad names, wrong versions, bad YAML', () => {
    expectLockError(edit('    resolved: "1.0"\n', '    resolved: "1.0"\n    mirror: x\n'), 10, 5, 'unknown key "mirror"');
    expectLockError(edit('  ocr:\n', '  OCR:\n'), 5, 3, 'invalid model name "OCR"');
    expectLockError(edit('lockfileVersion: 1', 'lockfileVersion: 2'), 3, 18, 'newer than this xprim-models supports');
    expectLockError(edit('lockfileVersion: 1\n', ''), 3, 1, 'missing required key "lockfileVersion"');
    expectLockError(edit('    version: "1.0"', '    version: 1.0'), 8, 14, 'models.ocr.version: expected a non-empty string');
    expectLockError(edit('  vad:\n', '  ocr:\n'), 15, 3, 'duplicate key');
    expectLockError(edit('    files:\n      - { path: ocr', '    files:\n      - { path: [ocr'), 14, 111, 'invalid YAML');
    expectLockError('', 1, 1, 'empty');
    expectLockError('lockfileVersion: 1\nmodels: []\n', 2, 9, 'models: expected a mapping');
  });
});

describe('readLockfile / writeLockfile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xprim-lock-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('undefined when the file does not exist', async () => {
    expect(await readLockfile(join(dir, 'absent.lock'))).toBeUndefined();
  });

  it('writes, reads back, and does not touch an unchanged file', async () => {
    const file = join(dir, 'models.lock');
    expect(await writeLockfile(file, sample)).toBe(true);
    expect(await readFile(file, 'utf8')).toBe(EXPECTED);
    expect(await readLockfile(file)).toEqual(sample);

    const old = new Date('2020-01-01T00:00:00Z');
    await utimes(file, old, old);
    const shuffled = { lockfileVersion: 1 as const, models: reversedKeys(sample.models) };
    expect(await writeLockfile(file, shuffled)).toBe(false);
    expect((await stat(file)).mtimeMs).toBe(old.getTime());

    const changed: Lockfile = { lockfileVersion: 1, models: { ...sample.models, extra: locked('g/x', 'v1', 'r') } };
    expect(await writeLockfile(file, changed)).toBe(true);
    expect((await stat(file)).mtimeMs).not.toBe(old.getTime());
    expect(await readLockfile(file)).toEqual(changed);
  });

  it('a corrupt file on disk is an E_LOCKFILE error naming it', async () => {
    const file = join(dir, 'bad.lock');
    await writeFile(file, 'lockfileVersion: 1\nmodels:\n  x: 3\n');
    await expect(readLockfile(file)).rejects.toMatchObject({ code: 'E_LOCKFILE', line: 3, column: 6 });
    await expect(readLockfile(file)).rejects.toThrow(`${file}:3:6: models.x: expected a mapping`);
  });

  it('refuses to write a lock it could not read back', async () => {
    const file = join(dir, 'never.lock');
    const bad: Lockfile = { lockfileVersion: 1, models: { x: locked('g/m', 'v1', 'r', { manifest: 'nope' }) } };
    await expect(writeLockfile(file, bad)).rejects.toMatchObject({ code: 'E_INTERNAL' });
    expect(await readLockfile(file)).toBeUndefined();
  });
});

describe('lockStatus', () => {
  const yaml = (ocr: string) =>
    `version: 1\nregistry: https://models.example.com\nmodels:\n  vad:\n    model: silero/vad\n    version: latest\n  ocr:\n${ocr}`;
  const base = yaml('    model: paddle/ocr\n    version: "1.0"\n    registry: ./registry\n');
  const lock = sample;

  it('in sync when every entry is locked with its spec', () => {
    expect(lockStatus(parseConfig(base, '/proj/models.yaml'), lock)).toEqual({ missing: [], stale: [], extra: [], inSync: true });
  });

  it('path, tags and when do not make an entry stale', () => {
    const config = parseConfig(
      yaml('    model: paddle/ocr\n    version: "1.0"\n    registry: ./registry/\n    path: vision/ocr\n    tags: [vision]\n    when: { os: [darwin] }\n'),
      '/elsewhere/models.yaml',
    );
    expect(lockStatus(config, lock).inSync).toBe(true);
  });

  it('a changed version, model or registry is stale', () => {
    for (const ocr of [
      '    model: paddle/ocr\n    version: "2.0"\n    registry: ./registry\n',
      '    model: paddle/ocr2\n    version: "1.0"\n    registry: ./registry\n',
      '    model: paddle/ocr\n    version: "1.0"\n',
    ]) {
      expect(lockStatus(parseConfig(yaml(ocr), '/proj/models.yaml'), lock)).toEqual({ missing: [], stale: ['ocr'], extra: [], inSync: false });
    }
  });

  it('missing and extra entries', () => {
    const config = parseConfig(
      'version: 1\nregistry: https://models.example.com\nmodels:\n  vad:\n    model: silero/vad\n    version: latest\n  new:\n    model: g/new\n    version: v1\n',
      '/proj/models.yaml',
    );
    expect(lockStatus(config, lock)).toEqual({ missing: ['new'], stale: [], extra: ['ocr'], inSync: false });
    expect(lockStatus(config, undefined)).toEqual({ missing: ['vad', 'new'], stale: [], extra: [], inSync: false });
  });
});
