/**
 * Peak memory of installs with many files (issue 11 item 8, issue 16 "peak RSS"): the pieces that
 * keep it bounded, each against the plain version it replaced, and installs of 100,000 files
 * measured end to end. bench/many-files.mjs measures the same at full size with timings.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type InstallState, readState, stateText, writeState } from '../src/install/state.js';
import { type LockedModel, type Lockfile, parseLockfile } from '../src/project/lockfile.js';
import { lockLine, specHash } from '../src/project/lock-format.js';
import { lockDigest, serializeLockBytes, serializeLockfile, writeLockfile } from '../src/project/lock-writer.js';
import { loadProject } from '../src/project/project.js';
import { parseManifest } from '../src/registry/manifest.js';
import type { RegistryClient } from '../src/registry/client.js';
import { getManifest } from '../src/store/manifests.js';
import { Store } from '../src/store/store.js';
import { EMPTY_SHA256, sha256 } from '../src/util/hash.js';
import { cleanTemps, tempDir } from './support/robustness.js';

afterAll(cleanTemps);

const HEX = (i: number) => i.toString(16).padStart(64, '0');

function state(models: Record<string, number>): InstallState {
  const out: InstallState = { integrityVersion: 1, generator: 'xprim-models 0.0.0-test', inputs: { config: HEX(1), lock: HEX(2) }, models: {} };
  for (const [name, n] of Object.entries(models)) {
    out.models[name] = {
      model: `demo/${name}`,
      version: 'v1',
      resolved: 'v1',
      manifest: HEX(3),
      registry: './registry',
      path: name,
      tags: ['a', 'b'],
      size: n,
      files: Array.from({ length: n }, (_, i) => ({ path: `d${i % 7}/f "${i}".bin`, size: 1, sha256: i % 2 ? HEX(i) : EMPTY_SHA256, mtimeMs: 1764640000000.123 + i })),
    };
  }
  return out;
}

describe('the install state is written in pieces (models.integrity.json)', () => {
  it('is the JSON of the state with models sorted by name, as before, and reads back as it was', async () => {
    for (const s of [state({}), state({ zeta: 0, alpha: 3 }), state({ big: 3000, small: 1 })]) {
      const text = [...stateText(s)].join('');
      const sorted = { ...s, models: Object.fromEntries(Object.keys(s.models).sort().map((k) => [k, s.models[k]])) };
      // Indented as JSON.stringify(…, null, 2) would, but for each file on one line of its own.
      const files = Object.values(s.models).reduce((n, m) => n + m.files.length, 0);
      expect(text.split('\n').filter((l) => l.startsWith('        {"path":'))).toHaveLength(files);
      expect(text.split('\n').length).toBe(files + (JSON.stringify({ ...sorted, models: Object.fromEntries(Object.entries(sorted.models).map(([k, m]) => [k, { ...m, files: [] }])) }, null, 2).split('\n').length) + Object.values(s.models).filter((m) => m.files.length > 0).length + 1);
      expect(JSON.stringify(JSON.parse(text))).toBe(JSON.stringify(sorted));
      const root = await tempDir();
      await writeState(root, s);
      expect(await readFile(join(root, 'models.integrity.json'), 'utf8')).toBe(text);
      const back = await readState(root, s.generator);
      expect(back).toEqual(sorted);
    }
  });

  it('one file per line, and a big state comes out in pieces of about 64 KiB, not as one string', () => {
    const pieces = [...stateText(state({ big: 3000 }))];
    expect(pieces.length).toBeGreaterThan(3);
    for (const piece of pieces.slice(0, -1)) expect(piece.length).toBeGreaterThanOrEqual(65536);
    for (const piece of pieces.slice(0, -1)) expect(piece.length).toBeLessThan(65536 + 300);
    const lines = pieces.join('').split('\n').filter((l) => l.startsWith('        {"path":'));
    expect(lines).toHaveLength(3000);
    expect(lines[0]).toBe(`        {"path":"d0/f \\"0\\".bin","size":1,"sha256":"${EMPTY_SHA256}","mtimeMs":1764640000000.123},`);
  });

  it('an older, fully indented integrity file still reads', async () => {
    const s = state({ m: 5 });
    const root = await tempDir();
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'models.integrity.json'), `${JSON.stringify(s, null, 2)}\n`);
    expect(await readState(root, s.generator)).toEqual(s);
  });
});

function lockOf(models: Record<string, number>): Lockfile {
  const out: Lockfile = { lockfileVersion: 1, models: {} };
  for (const [name, n] of Object.entries(models)) {
    const entry = { registry: './registry', model: `demo/${name}`, version: 'v1' };
    const files = Array.from({ length: n }, (_, i) => (i % 3 ? { path: `d${i % 5}/f${i}.bin`, size: i, sha256: HEX(i) } : { path: `d${i % 5}/f${i}.bin`, size: i }));
    out.models[name] = { spec: specHash(entry), ...entry, resolved: 'v1', manifest: HEX(7), size: files.reduce((t, f) => t + f.size, 0), files } satisfies LockedModel;
  }
  return out;
}

describe('models.lock from and to bytes', () => {
  const FILE = '/p/models.lock';

  it('parsed from its bytes as from its text: same entries, same line numbers, CRLF too', () => {
    const lock = lockOf({ b: 40, a: 3, empty: 0 });
    const text = serializeLockfile(lock);
    expect(text.startsWith('# models.lock — written by xprim-models')).toBe(true);
    for (const variant of [text, text.replace(/\n/g, '\r\n')]) {
      const fromText = parseLockfile(variant, FILE);
      const fromBytes = parseLockfile(Buffer.from(variant), FILE);
      expect(fromBytes).toEqual(lock);
      expect(fromBytes).toEqual(fromText);
      for (const name of Object.keys(lock.models)) {
        const [t, b] = [fromText.models[name] as LockedModel, fromBytes.models[name] as LockedModel];
        expect(lockLine(b)).toBe(lockLine(t));
        expect(lockLine(b)).toBe(variant.replace(/\r/g, '').split('\n').indexOf(`  ${name}:`) + 1);
        for (let i = 0; i < t.files.length; i++) expect(lockLine(b, i)).toBe(lockLine(t, i));
      }
    }
  });

  it('a lock not in the canonical layout, or not ASCII, read from bytes goes to the full parser with its messages', () => {
    const text = serializeLockfile(lockOf({ a: 2 }));
    const commented = text.replace('lockfileVersion: 1\n', 'lockfileVersion: 1\n# a comment\n');
    expect(parseLockfile(Buffer.from(commented), FILE)).toEqual(parseLockfile(commented, FILE));
    const quoted = text.replace('path: d1/f1.bin', 'path: "d1/é1.bin"');
    expect(parseLockfile(Buffer.from(quoted), FILE).models.a?.files[1]?.path).toBe('d1/é1.bin');
    const bad = text.replace(/size: 1, sha256/, 'size: -1, sha256');
    expect(() => parseLockfile(Buffer.from(bad), FILE)).toThrow(/models\.lock:\d+:\d+: models\.a\.files\[1\]\.size/);
    expect(() => parseLockfile(Buffer.from(text.replace('# models.lock', '# models-lock')), FILE)).not.toThrow();
  });

  it('serializeLockBytes is the UTF-8 of serializeLockfile; writeLockfile writes it and the project digest is its sha256', async () => {
    const lock = lockOf({ m: 2000, n: 1 });
    const bytes = serializeLockBytes(lock);
    expect(bytes.equals(Buffer.from(serializeLockfile(lock)))).toBe(true);
    expect(bytes.length).toBeGreaterThan(2 * 65536); // several pieces
    const dir = await tempDir();
    await writeFile(join(dir, 'models.yaml'), 'version: 1\nregistry: ./registry\nmodels: {}\n');
    expect(await writeLockfile(join(dir, 'models.lock'), lock)).toBe(true);
    expect(await writeLockfile(join(dir, 'models.lock'), lock)).toBe(false);
    const onDisk = await readFile(join(dir, 'models.lock'));
    expect(onDisk.equals(bytes)).toBe(true);
    expect(lockDigest(lock)).toBe(sha256(onDisk));
    expect(lockDigest(lockOf({ m: 2000, n: 1 }))).toBe(sha256(onDisk));
    const project = await loadProject(join(dir, 'models.yaml'));
    expect(project.digests.lock).toBe(sha256(onDisk));
    expect(project.lock).toEqual(lock);
    project.lock = lock;
    expect(project.digests.lock).toBe(sha256(onDisk));
  });
});

describe('a parsed manifest', () => {
  it('holds one object per file: the layout spans are also the manifest file list', () => {
    const doc = Buffer.from(JSON.stringify({ total_size: 3, chunk_size: 2, chunks: [HEX(1), HEX(2)], files: [{ path: 'a/x', size: 1, sha256: HEX(3) }, { path: 'a/y', size: 0 }, { path: 'b', size: 2 }] }));
    const layout = parseManifest(doc, sha256(doc));
    expect(layout.manifest.files).toBe(layout.files);
    expect(layout.files.map((f) => [f.index, f.path, f.offset, f.size, f.sha256])).toEqual([[0, 'a/x', 0, 1, HEX(3)], [1, 'a/y', 1, 0, undefined], [2, 'b', 1, 2, undefined]]);
    // A view of a bigger buffer parses as its own bytes.
    const padded = Buffer.concat([Buffer.from('xx'), doc, Buffer.from('yy')]);
    expect(parseManifest(padded.subarray(2, 2 + doc.length), sha256(doc)).files).toEqual(layout.files);
  });
});

describe('getManifest: a manifest parsed once per run', () => {
  it('the layout parsed earlier in the run is handed out again while it is alive, only for the same verified bytes', async () => {
    const doc = Buffer.from(JSON.stringify({ total_size: 0, chunk_size: 1, chunks: [], files: Array.from({ length: 50 }, (_, i) => ({ path: `f${i}`, size: 0 })) }));
    const hash = sha256(doc);
    let fetched = 0;
    const client = { fetchSmall: async () => ((fetched += 1), { bytes: Buffer.from(doc), url: 'http://127.0.0.1/data' }) } as unknown as RegistryClient;
    const store = new Store(join(await tempDir(), 'cache'));
    await store.init();
    const first = await getManifest(store, client, hash, 'm');
    expect(fetched).toBe(1);
    const again = await getManifest(store, client, hash, 'm');
    expect(again.layout).toBe(first.layout);
    expect(again.bytes.equals(doc)).toBe(true);
    expect(fetched).toBe(1);
    // A store copy that no longer has this hash is not trusted because the layout is known: fetched again.
    await writeFile(store.manifestPath(hash), Buffer.concat([doc, Buffer.from(' ')]));
    const refetched = await getManifest(store, client, hash, 'm');
    expect(fetched).toBe(2);
    expect(refetched.bytes.equals(doc)).toBe(true);
    expect(refetched.layout.files).toEqual(first.layout.files);
  });
});

describe('peak memory of a many-file model through the CLI', () => {
  // 25,000 empty files: a quarter of MAX_FILES, so the suite stays quick. Before the bounded loops
  // (util/pool.ts) and the state and lock written in pieces, these runs took 2-4x as much
  // (bench/many-files.mjs measures the same at 100,000 files: about 230 MB cold, 190 MB verify).
  it('cold install, verify and a warm install into an empty folder each stay under 150 MB', async () => {
    const { BIN, makeProject } = await import('./support/cli.js');
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const n = 25_000;
    const files = Array.from({ length: n }, (_, i) => ({ path: `part-${String(Math.floor(i / 1000)).padStart(2, '0')}/file-${String(i).padStart(5, '0')}.bin`, size: 0, sha256: EMPTY_SHA256 }));
    const manifest = Buffer.from(JSON.stringify({ total_size: 0, chunk_size: 16 * 1024 * 1024, chunks: [], files }));
    const hash = sha256(manifest);
    const registry = await tempDir();
    await mkdir(join(registry, 'data'));
    await writeFile(join(registry, 'data', hash), manifest);
    await writeFile(join(registry, 'models.json'), JSON.stringify({ bench: { many: { v1: { hash } } } }));
    const p = await makeProject(`version: 1\nregistry: ${registry}\nmodels:\n  many:\n    model: bench/many\n    version: v1\n`);
    const rssFile = join(p.dir, 'rss.txt');
    const wrapper = join(p.dir, 'rss.mjs');
    await writeFile(wrapper, `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));\nprocess.argv[1] = ${JSON.stringify(BIN)};\nawait import(${JSON.stringify(BIN)});\n`);
    const peakMB = async (...argv: string[]): Promise<number> => {
      await promisify(execFile)(process.execPath, [wrapper, ...argv, '--quiet'], { cwd: p.dir, env: { ...process.env, ...p.env, CI: 'true' }, maxBuffer: 16 << 20 });
      return Number(await readFile(rssFile, 'utf8')) / 1024;
    };
    const peaks = { cold: await peakMB('install'), verify: await peakMB('verify') };
    const { rm } = await import('node:fs/promises');
    await rm(join(p.dir, 'models'), { recursive: true, force: true });
    const warm = await peakMB('install', '--frozen');
    expect((await readFile(join(p.dir, 'models.lock'), 'utf8')).split('\n').filter((l) => l.includes('path: part-')).length).toBe(n);
    for (const [run, mb] of Object.entries({ ...peaks, warm })) expect(mb, `${run}: peak RSS ${mb.toFixed(0)} MB`).toBeLessThan(150);
  });
});
