import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ModelsError } from '../src/util/errors.js';
import { writeFileAtomic } from '../src/util/fsutil.js';
import { parseManifest, type ManifestLayout } from '../src/registry/manifest.js';
import { parseSize, publish, type PublishOptions } from '../src/ops/publish.js';
import { acquireLock } from '../src/store/locks.js';

import { CONFORMANCE as SHARED_CONFORMANCE, bytes } from './support/cli.js';
const CONFORMANCE = join(SHARED_CONFORMANCE, 'registry');
const temps: string[] = [];

afterEach(async () => {
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'xprim-publish-'));
  temps.push(dir);
  return dir;
}

const sha = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

async function writeTree(root: string, files: Record<string, Buffer | string>): Promise<void> {
  for (const [path, data] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), data);
  }
}

async function readRegistry(registry: string): Promise<Record<string, Record<string, Record<string, Record<string, unknown>>>>> {
  return JSON.parse(await readFile(join(registry, 'models.json'), 'utf8'));
}

/** Read a manifest back the way a client does, and rebuild every file from the chunk files. */
async function reassemble(registry: string, hash: string): Promise<{ layout: ManifestLayout; files: Map<string, Buffer> }> {
  const layout = parseManifest(await readFile(join(registry, 'data', hash)), hash);
  const parts: Buffer[] = [];
  for (const chunk of layout.chunks) {
    const data = await readFile(join(registry, 'data', chunk.hash));
    expect(data.length).toBe(chunk.size);
    expect(sha(data)).toBe(chunk.hash);
    parts.push(data);
  }
  const stream = Buffer.concat(parts);
  expect(stream.length).toBe(layout.totalSize);
  const files = new Map<string, Buffer>();
  for (const file of layout.files) files.set(file.path, stream.subarray(file.offset, file.offset + file.size));
  return { layout, files };
}

async function expectError(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<ModelsError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ModelsError);
  const modelsError = error as ModelsError;
  expect(modelsError.code).toBe(code);
  expect(modelsError.message).toMatch(pattern);
  expect(modelsError.hint).toBeTruthy();
  return modelsError;
}

describe('publish', () => {
  it('chunks nested files, empty files and files spanning chunk boundaries; reassembles byte-exactly', async () => {
    const source = await tempDir();
    const registry = join(await tempDir(), 'new-registry');
    const content: Record<string, Buffer> = {
      'model.bin': bytes(2500, 1), // spans three chunks
      'empty.txt': Buffer.alloc(0),
      'b/deep/nested/weights.bin': bytes(1000, 2), // starts mid-chunk
      'b/config.json': Buffer.from('{"a":1}\n'),
      'Z-upper.txt': bytes(7, 3),
      'models.json': Buffer.from('{"not":"the index"}'), // an ordinary file here
    };
    await writeTree(source, content);
    const total = Object.values(content).reduce((sum, b) => sum + b.length, 0);
    const progress: number[] = [];
    const result = await publish({
      sourceDir: source,
      registryDir: registry,
      model: 'acme/detector',
      version: 'v1',
      chunkSize: 1000,
      metadata: { framework: 'onnx' },
      onProgress: (e) => {
        expect(e.bytesTotal).toBe(total);
        progress.push(e.bytesDone);
      },
    });
    expect(result).toMatchObject({ model: 'acme/detector', version: 'v1', totalSize: total, files: 6, unchanged: false });
    expect(result.chunks).toBe(Math.ceil(total / 1000));
    expect(result.chunksWritten).toBe(result.chunks);
    expect(progress.at(-1)).toBe(total);

    const { layout, files } = await reassemble(registry, result.manifestHash);
    // Sorted by the bytes of the path: uppercase before lowercase, folders by their full path.
    expect(layout.files.map((f) => f.path)).toEqual([
      'Z-upper.txt',
      'b/config.json',
      'b/deep/nested/weights.bin',
      'empty.txt',
      'model.bin',
      'models.json',
    ]);
    expect(layout.manifest.chunk_size).toBe(1000);
    for (const file of layout.files) {
      const expected = content[file.path] as Buffer;
      expect(files.get(file.path)?.equals(expected)).toBe(true);
      expect(file.sha256).toBe(sha(expected));
    }
    const index = await readRegistry(registry);
    expect(index).toEqual({ acme: { detector: { v1: { hash: result.manifestHash, metadata: { framework: 'onnx' } } } } });
    // Fixed format: 1-space indent, trailing newline.
    expect(await readFile(join(registry, 'data', result.manifestHash), 'utf8')).toMatch(/^\{\n "total_size": \d+,\n "chunk_size": 1000,\n[\s\S]*\n\}\n$/);
  });

  it('re-publishing the same content writes nothing', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    await writeTree(source, { 'a.bin': bytes(3000, 4), 'sub/b.txt': 'hello' });
    const options: PublishOptions = { sourceDir: source, registryDir: registry, model: 'acme/m', version: '1.0.0', chunkSize: 1024, aliases: ['latest'] };
    const first = await publish(options);
    const indexPath = join(registry, 'models.json');
    const indexBefore = await readFile(indexPath);
    const mtimeBefore = (await stat(indexPath)).mtimeMs;
    const dataBefore = await listWithMtimes(join(registry, 'data'));
    await new Promise((resolve) => setTimeout(resolve, 20));

    const second = await publish(options);
    expect(second.unchanged).toBe(true);
    expect(second.chunksWritten).toBe(0);
    expect(second.bytesWritten).toBe(0);
    expect(second.manifestHash).toBe(first.manifestHash);
    expect((await readFile(indexPath)).equals(indexBefore)).toBe(true);
    expect((await stat(indexPath)).mtimeMs).toBe(mtimeBefore);
    expect(await listWithMtimes(join(registry, 'data'))).toEqual(dataBefore);
    // No temp files or lock left behind.
    expect((await readdir(registry)).sort()).toEqual(['data', 'models.json']);
  });

  it('repairs a chunk that went missing when the same content is published again', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    await writeTree(source, { 'a.bin': bytes(3000, 5) });
    const options: PublishOptions = { sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1', chunkSize: 1000 };
    const first = await publish(options);
    const layout = parseManifest(await readFile(join(registry, 'data', first.manifestHash)), first.manifestHash);
    const victim = layout.chunks[1]?.hash as string;
    await rm(join(registry, 'data', victim));
    const second = await publish(options);
    expect(second.unchanged).toBe(false);
    expect(second.chunksWritten).toBe(1);
    expect(sha(await readFile(join(registry, 'data', victim)))).toBe(victim);
  });

  it('sets an alias, then moves it to a newer version', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    await writeTree(source, { 'w.bin': bytes(500, 6) });
    const v1 = await publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1', aliases: ['latest', 'stable'] });
    expect(v1.aliases).toEqual(['latest', 'stable']);
    let index = await readRegistry(registry);
    expect(index.acme?.m?.latest).toEqual({ hash: v1.manifestHash, alias_of: 'v1' });
    expect(index.acme?.m?.stable).toEqual({ hash: v1.manifestHash, alias_of: 'v1' });

    await writeTree(source, { 'w.bin': bytes(600, 7) });
    const v2 = await publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v2', aliases: ['latest'] });
    expect(v2.manifestHash).not.toBe(v1.manifestHash);
    index = await readRegistry(registry);
    expect(index.acme?.m).toEqual({
      latest: { hash: v2.manifestHash, alias_of: 'v2' },
      stable: { hash: v1.manifestHash, alias_of: 'v1' },
      v1: { hash: v1.manifestHash },
      v2: { hash: v2.manifestHash },
    });
    // Keys are written sorted.
    const text = await readFile(join(registry, 'models.json'), 'utf8');
    expect(text.indexOf('"latest"')).toBeLessThan(text.indexOf('"stable"'));
    expect(text.indexOf('"stable"')).toBeLessThan(text.indexOf('"v1"'));
    expect(text.endsWith('}\n')).toBe(true);

    // An alias may not shadow a real version, and a version name may not reuse an alias.
    await expectError(publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v3', aliases: ['v1'] }), 'E_USAGE', /v1 an alias: it is a published version/);
    await expectError(publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'latest' }), 'E_USAGE', /latest is an alias of v2/);
    expect(await readRegistry(registry)).toEqual(index);
  });

  it('refuses other content under an existing version, leaving the registry untouched', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    await writeTree(source, { 'w.bin': bytes(5000, 8) });
    await publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1', chunkSize: 1000 });
    const indexBefore = await readFile(join(registry, 'models.json'));
    const dataBefore = (await readdir(join(registry, 'data'))).sort();

    await writeTree(source, { 'w.bin': bytes(5000, 9) });
    const error = await expectError(
      publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1', chunkSize: 1000 }),
      'E_USAGE',
      /acme\/m v1 is already published with other content/,
    );
    expect(error.hint).toMatch(/new version/);
    expect(error.exitCode).toBe(2);
    expect((await readFile(join(registry, 'models.json'))).equals(indexBefore)).toBe(true);
    // Hashed without writing: no orphan chunks.
    expect((await readdir(join(registry, 'data'))).sort()).toEqual(dataBefore);

    // Same bytes at another chunk size are other content too (another manifest).
    await writeTree(source, { 'w.bin': bytes(5000, 8) });
    await expectError(publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1', chunkSize: 2000 }), 'E_USAGE', /other content/);
    // Other metadata on a published version is refused as well.
    await expectError(
      publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1', chunkSize: 1000, metadata: { k: 'v' } }),
      'E_USAGE',
      /other metadata/,
    );
  });

  it('reuses chunk files across versions that share chunk-aligned content', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    const shared = bytes(4000, 10);
    await writeTree(source, { 'a-base.bin': shared });
    const v1 = await publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1', chunkSize: 1000 });
    expect(v1.chunksWritten).toBe(4);
    await writeTree(source, { 'b-extra.bin': bytes(1500, 11) });
    const v2 = await publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v2', chunkSize: 1000 });
    expect(v2.chunks).toBe(6);
    expect(v2.chunksWritten).toBe(2);
    const l1 = parseManifest(await readFile(join(registry, 'data', v1.manifestHash)), v1.manifestHash);
    const l2 = parseManifest(await readFile(join(registry, 'data', v2.manifestHash)), v2.manifestHash);
    expect(l2.manifest.chunks.slice(0, 4)).toEqual(l1.manifest.chunks);
    // 4 shared + 2 new chunks + 2 manifests.
    expect((await readdir(join(registry, 'data'))).length).toBe(8);
    const { files } = await reassemble(registry, v2.manifestHash);
    expect(files.get('a-base.bin')?.equals(shared)).toBe(true);
  });

  it('reproduces the conformance registry: demo/shared v1 and a one-chunk file', async () => {
    // demo/shared v1 lists its files in sorted order with per-file sha256: rebuild its folder from
    // the conformance chunks, publish it at 64 KiB, and compare the manifest and the chunk hashes.
    const index = JSON.parse(await readFile(join(CONFORMANCE, 'models.json'), 'utf8'));
    const hash = index.demo.shared.v1.hash as string;
    const { layout, files } = await reassemble(CONFORMANCE, hash);
    const source = await tempDir();
    const registry = await tempDir();
    for (const [path, data] of files) await writeTree(source, { [path]: data });
    const result = await publish({ sourceDir: source, registryDir: registry, model: 'demo/shared', version: 'v1', chunkSize: 65536 });
    const ours = await readFile(join(registry, 'data', result.manifestHash), 'utf8');
    const theirs = await readFile(join(CONFORMANCE, 'data', hash), 'utf8');
    // Same document; the only difference is our trailing newline.
    expect(ours).toBe(`${theirs}\n`);
    const mine = parseManifest(Buffer.from(ours), result.manifestHash);
    expect(mine.manifest.chunks).toEqual(layout.manifest.chunks);
    expect(mine.manifest.files).toEqual(layout.manifest.files);

    // A single file of exactly one chunk: its chunk is the raw file.
    const one = await tempDir();
    const exact = bytes(65536, 12);
    await writeTree(one, { 'exact.bin': exact });
    const single = await publish({ sourceDir: one, registryDir: registry, model: 'demo/one', version: 'v1', chunkSize: 65536 });
    const singleLayout = parseManifest(await readFile(join(registry, 'data', single.manifestHash)), single.manifestHash);
    expect(singleLayout.manifest.chunks).toEqual([sha(exact)]);
    expect(singleLayout.files[0]?.sha256).toBe(sha(exact));
    // The registry we wrote keeps both models.
    expect(Object.keys((await readRegistry(registry)).demo ?? {})).toEqual(['one', 'shared']);
  });

  it('streams a 20 MiB file through 1 MiB chunks', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    const big = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i); // distinct chunks
    await writeTree(source, { 'big.bin': big });
    let events = 0;
    const result = await publish({ sourceDir: source, registryDir: registry, model: 'acme/big', version: 'v1', chunkSize: 1024 * 1024, onProgress: () => (events += 1) });
    expect(result.chunks).toBe(20);
    expect(result.chunksWritten).toBe(20);
    expect(events).toBeGreaterThanOrEqual(20);
    const layout = parseManifest(await readFile(join(registry, 'data', result.manifestHash)), result.manifestHash);
    expect(layout.files[0]?.sha256).toBe(sha(big));
    for (const chunk of layout.chunks) {
      expect(sha(big.subarray(chunk.offset, chunk.offset + chunk.size))).toBe(chunk.hash);
    }
  });

  it('keeps other models and unknown fields in an existing models.json', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    await writeTree(source, { 'w.bin': 'x' });
    const other = { zeta: { m: { v9: { hash: 'a'.repeat(64), extra: [1, 2], metadata: { b: '2', a: '1' } } } } };
    await writeFile(join(registry, 'models.json'), JSON.stringify(other));
    await publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1' });
    const index = await readRegistry(registry);
    expect(index.zeta).toEqual(other.zeta);
    expect(Object.keys(index)).toEqual(['acme', 'zeta']);
  });

  it('takes over a stale lock left by a dead publisher', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    await writeTree(source, { 'w.bin': 'x' });
    const lock = join(registry, '.models.json.lock');
    await mkdir(lock);
    const old = new Date(Date.now() - 120_000);
    await utimes(lock, old, old);
    const result = await publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1' });
    expect((await readRegistry(registry)).acme?.m?.v1?.hash).toBe(result.manifestHash);
    expect(existsSync(lock)).toBe(false);
  });

  it('sorts paths by their UTF-8 bytes, not UTF-16 code units', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    // U+1F600 sorts before U+FFFD in UTF-16 (surrogates) but after it in UTF-8.
    await writeTree(source, { '\u{1F600}.bin': 'a', '\uFFFD.bin': 'b', 'z.bin': 'c' });
    const result = await publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1' });
    const { layout } = await reassemble(registry, result.manifestHash);
    expect(layout.files.map((f) => f.path)).toEqual(['z.bin', '\uFFFD.bin', '\u{1F600}.bin']);
  });

  it('refuses a malformed models.json without touching it', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    await writeTree(source, { 'w.bin': 'x' });
    await writeFile(join(registry, 'models.json'), '{ broken');
    await expectError(publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1' }), 'E_INDEX', /models\.json is malformed/);
    expect(await readFile(join(registry, 'models.json'), 'utf8')).toBe('{ broken');
  });

  it('refuses a models.json that clients would refuse (the same shape check), without touching it', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    await writeTree(source, { 'w.bin': 'x' });
    const text = JSON.stringify({ zeta: { m: { v9: { hash: 'not-a-sha256' } } } });
    await writeFile(join(registry, 'models.json'), text);
    await expectError(publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1' }), 'E_INDEX', /models\.json is malformed: "zeta\/m@v9" has a hash that is not 64 lowercase hex/);
    expect(await readFile(join(registry, 'models.json'), 'utf8')).toBe(text);
  });

  it('waits for another writer holding the registry lock, up to MODELS_LOCK_TIMEOUT, then gives up with E_LOCK_TIMEOUT', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    await writeTree(source, { 'w.bin': 'x' });
    // The lock publish and mirror take: <registry>/.models.json.lock.
    const held = await acquireLock(join(registry, '.models.json'), 'the test', 1_000);
    const saved = process.env.MODELS_LOCK_TIMEOUT;
    process.env.MODELS_LOCK_TIMEOUT = '0.5';
    try {
      const started = Date.now();
      await expectError(publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1' }), 'E_LOCK_TIMEOUT', /waiting for the registry .*\.models\.json\.lock/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(450);
      expect(existsSync(join(registry, 'models.json'))).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.MODELS_LOCK_TIMEOUT;
      else process.env.MODELS_LOCK_TIMEOUT = saved;
      await held();
    }
    await publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1' });
    expect(Object.keys((await readRegistry(registry)).acme?.m ?? {})).toEqual(['v1']);
  });

  it('publishes concurrently into one registry without losing an entry', async () => {
    const registry = await tempDir();
    const runs = await Promise.all(
      [1, 2, 3, 4].map(async (n) => {
        const source = await tempDir();
        await writeTree(source, { 'w.bin': bytes(300, n) });
        return publish({ sourceDir: source, registryDir: registry, model: `acme/m${n}`, version: 'v1' });
      }),
    );
    const index = await readRegistry(registry);
    for (const [i, run] of runs.entries()) expect(index.acme?.[`m${i + 1}`]?.v1?.hash).toBe(run.manifestHash);
  });

  it('follows symlinks inside the folder and refuses those pointing outside', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    const outside = await tempDir();
    await writeTree(source, { 'real/w.bin': 'weights' });
    await symlink(join(source, 'real', 'w.bin'), join(source, 'link.bin'));
    const ok = await publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1' });
    const { files } = await reassemble(registry, ok.manifestHash);
    expect(files.get('link.bin')?.toString()).toBe('weights');

    await writeTree(outside, { 'secret.txt': 'secret' });
    await symlink(join(outside, 'secret.txt'), join(source, 'escape.txt'));
    await expectError(publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v2' }), 'E_USAGE', /escape\.txt points outside the source folder/);
    await rm(join(source, 'escape.txt'));
    await symlink(source, join(source, 'real', 'loop'));
    await expectError(publish({ sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v2' }), 'E_USAGE', /loop makes a cycle/);
  });

  it('refuses bad input with E_USAGE', async () => {
    const source = await tempDir();
    const registry = await tempDir();
    const base = { sourceDir: source, registryDir: registry, model: 'acme/m', version: 'v1' };
    await expectError(publish(base), 'E_USAGE', /holds no files/);
    await writeTree(source, { 'w.bin': 'x' });
    for (const model of ['acme', 'Acme/m', 'a/b/c', 'acme/-m', `acme/${'x'.repeat(65)}`]) {
      await expectError(publish({ ...base, model }), 'E_USAGE', /invalid model name/);
    }
    for (const version of ['', '-v1', 'v 1', 'v1/x', 'x'.repeat(129)]) {
      await expectError(publish({ ...base, version }), 'E_USAGE', /invalid version name/);
    }
    await expectError(publish({ ...base, aliases: ['la test'] }), 'E_USAGE', /invalid alias name/);
    await expectError(publish({ ...base, aliases: ['v1'] }), 'E_USAGE', /is the version itself/);
    await expectError(publish({ ...base, chunkSize: 0 }), 'E_USAGE', /invalid chunk size/);
    await expectError(publish({ ...base, sourceDir: join(source, 'missing') }), 'E_USAGE', /does not exist/);
    await expectError(publish({ ...base, registryDir: join(source, 'reg') }), 'E_USAGE', /inside the source folder/);
    expect(existsSync(join(source, 'reg'))).toBe(false);
    await writeTree(source, { 'W.BIN': 'y' });
    await expectError(publish(base), 'E_USAGE', /differ only in case/);
    expect(existsSync(join(registry, 'models.json'))).toBe(false);
  });
});

describe('parseSize', () => {
  it.each([
    ['1048576', 1048576],
    ['0', 0],
    ['16MiB', 16 * 1024 * 1024],
    ['64KiB', 65536],
    ['64kib', 65536],
    ['1M', 1048576],
    ['1K', 1024],
    ['2G', 2 * 1024 ** 3],
    ['1.5GB', 1.5e9],
    ['1MB', 1e6],
    ['10 KB', 10000],
    ['512B', 512],
    ['1.5K', 1536],
    ['1TiB', 1024 ** 4],
  ])('%s -> %d', (text, expected) => {
    expect(parseSize(text)).toBe(expected);
  });

  it.each(['', 'abc', '-1', '1.2.3', '10 XB', 'MiB', '1e3', '0x10', '1 M B', '99999999999999999TiB'])('refuses %j', (text) => {
    expect(() => parseSize(text)).toThrow(ModelsError);
    try {
      parseSize(text);
    } catch (error) {
      expect((error as ModelsError).code).toBe('E_USAGE');
    }
  });
});

describe('writeFileAtomic', () => {
  it('replaces a file whole and leaves no temp file, also on failure', async () => {
    const dir = await tempDir();
    const path = join(dir, 'f.json');
    await writeFileAtomic(path, 'one');
    await writeFileAtomic(path, Buffer.from('two'));
    expect(await readFile(path, 'utf8')).toBe('two');
    expect(await readdir(dir)).toEqual(['f.json']);
    // The target is a folder: the rename fails, the temp file goes away.
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'x'), '');
    await expect(writeFileAtomic(join(dir, 'sub'), 'data')).rejects.toBeInstanceOf(ModelsError);
    expect((await readdir(dir)).sort()).toEqual(['f.json', 'sub']);
  });
});

async function listWithMtimes(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of await readdir(dir)) out[name] = (await stat(join(dir, name))).mtimeMs;
  return out;
}
