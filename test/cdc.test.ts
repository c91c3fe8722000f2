/**
 * Content-defined chunking (docs/cdc.md): the same bytes always cut the same way; an insertion or
 * an edit leaves every other chunk shared; `models update` then fetches only the new chunks.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GEAR_TABLE } from 'gearhash-jit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CDC, GearCutter } from '../src/ops/chunker.js';
import { parseManifest } from '../src/registry/manifest.js';
import { publish, type PublishResult } from '../src/ops/publish.js';
import { formatBytes } from '../src/util/units.js';
import { CONFORMANCE, EXPECTED, cliProject, mismatches, tempDir, yamlFor } from './support/cli.js';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';

const MiB = 1024 * 1024;
const temps: string[] = [];
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});
async function temp(): Promise<string> {
  const dir = await tempDir('xprim-cdc-');
  temps.push(dir);
  return dir;
}

const sha = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

/** Deterministic pseudo-random bytes (the AES-128-CTR keystream of a seed): fast, the same everywhere. */
function noise(length: number, seed: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(seed);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

async function publishBytes(registry: string, data: Buffer, version: string, extra: { aliases?: string[] } = {}): Promise<PublishResult & { sizes: number[]; chunkList: string[] }> {
  const source = await temp();
  await writeFile(join(source, 'model.gguf'), data);
  const result = await publish({ sourceDir: source, registryDir: registry, model: 'test/cdc', version, chunking: 'cdc', ...extra });
  await rm(source, { recursive: true, force: true });
  const layout = parseManifest(await readFile(join(registry, 'data', result.manifestHash)), result.manifestHash);
  return { ...result, sizes: layout.manifest.chunk_sizes ?? [], chunkList: layout.manifest.chunks };
}

/** Cut `data` feeding the cutter in pieces of the given sizes (in turn), as a streaming reader would. */
function cutInPieces(data: Buffer, pieces: number[]): number[] {
  const cutter = new GearCutter();
  const sizes: number[] = [];
  let start = 0;
  let fill = 0;
  for (let p = 0; fill < data.length; p++) {
    fill = Math.min(data.length, fill + (pieces[p % pieces.length] as number));
    for (let n = cutter.cut(data.subarray(start, fill)); n > 0; n = cutter.cut(data.subarray(start, fill))) {
      sizes.push(n);
      start += n;
    }
  }
  if (start < data.length) sizes.push(data.length - start);
  return sizes;
}

/**
 * docs/cdc.md's algorithm written out plainly, byte by byte, with the 64-bit hash as two 32-bit
 * halves: an independent implementation of the page, to check that the page and the code agree.
 */
function referenceCut(data: Buffer): number[] {
  const lo = GEAR_TABLE.map((v) => Number(v & 0xffffffffn));
  const hi = GEAR_TABLE.map((v) => Number(v >> 32n));
  const sizes: number[] = [];
  for (let start = 0; start < data.length; ) {
    const left = data.length - start;
    let length = Math.min(left, CDC.max);
    let hHi = 0;
    let hLo = 0;
    for (let i = CDC.min; i < Math.min(left, CDC.max); i++) {
      const b = data[start + i] as number;
      const shiftedHi = ((hHi << 1) | (hLo >>> 31)) >>> 0;
      const sumLo = ((hLo << 1) >>> 0) + (lo[b] as number);
      hLo = sumLo >>> 0;
      hHi = (shiftedHi + (hi[b] as number) + (sumLo > 0xffffffff ? 1 : 0)) >>> 0;
      // The masks' set bits all sit in the top half: 25 bits below 8 MiB, 21 bits from there on.
      if ((hHi & (i < CDC.normal ? 0xffffff80 : 0xfffff800)) === 0) {
        length = i + 1;
        break;
      }
    }
    sizes.push(length);
    start += length;
  }
  return sizes;
}

const newChunks = (before: string[], after: string[]): number => after.filter((c) => !new Set(before).has(c)).length;

describe('content-defined chunking', () => {
  it('the gear table and the parameters are the ones docs/cdc.md specifies', () => {
    const table = Buffer.alloc(256 * 8);
    GEAR_TABLE.forEach((value, i) => table.writeBigUInt64LE(value, i * 8));
    expect(sha(table)).toBe(TABLE_SHA256);
    expect(CDC).toEqual({ min: 4 * MiB, normal: 8 * MiB, max: 16 * MiB, maskHard: 0xffffff8000000000n, maskEasy: 0xfffff80000000000n });
  });

  it('a fixed input always gives the same chunk list, however its bytes are fed to the chunker', async () => {
    const data = noise(48 * MiB, 1);
    const registry = await temp();
    const published = await publishBytes(registry, data, 'v1');
    expect(published.chunking).toBe('cdc');
    // The boundaries (sizes) and the chunk hashes, pinned: any change to the cut points fails here.
    expect(published.sizes).toEqual(PINNED_SIZES);
    expect(sha(published.chunkList.join('\n'))).toBe(PINNED_CHUNKS_SHA256);
    for (const size of published.sizes.slice(0, -1)) {
      expect(size).toBeGreaterThan(CDC.min);
      expect(size).toBeLessThanOrEqual(CDC.max);
    }
    // Reads of any size cut the same bytes the same way.
    expect(cutInPieces(data, [1 * MiB])).toEqual(published.sizes);
    expect(cutInPieces(data, [7, 3 * MiB + 1, 65_536, 17 * MiB])).toEqual(published.sizes);
    expect(cutInPieces(data, [data.length])).toEqual(published.sizes);
    expect(referenceCut(data)).toEqual(published.sizes);
    // Publishing the same bytes again gives the same manifest and writes nothing.
    const again = await publishBytes(registry, data, 'v1');
    expect(again.manifestHash).toBe(published.manifestHash);
    expect(again.unchanged).toBe(true);
  });

  it('an insertion near the start and a small edit in the middle of a 256 MiB file share all but a few chunks', async () => {
    const v1 = noise(256 * MiB, 2);
    const inserted = Buffer.concat([v1.subarray(0, 5000), noise(1000, 3), v1.subarray(5000)]);
    const edited = Buffer.from(v1);
    edited.fill(0x42, 128 * MiB, 128 * MiB + 100);
    const registry = await temp();
    const one = await publishBytes(registry, v1, 'v1');
    const two = await publishBytes(registry, inserted, 'v2');
    const three = await publishBytes(registry, edited, 'v3');
    expect(one.chunks).toBeGreaterThan(20);
    // Only the chunk holding the change differs (two when the change falls near a boundary).
    expect(newChunks(one.chunkList, two.chunkList)).toBeLessThanOrEqual(2);
    expect(newChunks(one.chunkList, three.chunkList)).toBeLessThanOrEqual(2);
    // And publishing writes only those chunks: the registry already holds the rest.
    expect(two.chunksWritten).toBe(newChunks(one.chunkList, two.chunkList));
    expect(three.chunksWritten).toBe(newChunks([...one.chunkList, ...two.chunkList], three.chunkList));
    expect(two.bytesWritten).toBeLessThan(2 * CDC.max + 64 * 1024);
  }, 120_000);

  describe('installs', () => {
    let server: RegistryServer;
    let registry: string;
    beforeAll(async () => {
      registry = await temp();
      server = await startRegistryServer({ root: registry });
    });
    afterAll(async () => {
      await server?.close();
    });

    it('update to v2 installs byte-exactly and fetches only the chunks v1 did not have', async () => {
      const v1 = noise(80 * MiB, 4);
      const v2 = Buffer.concat([v1.subarray(0, 1536), Buffer.from('{# fixed template #}'.repeat(50)), v1.subarray(1536)]);
      const one = await publishBytes(registry, v1, 'v1', { aliases: ['latest'] });
      const p = await cliProject(yamlFor(server.url, { m: { model: 'test/cdc', version: 'latest' } }), temps);
      expect((await p.cli('install')).code).toBe(0);
      expect(sha(await readFile(join(p.dir, 'models', 'm', 'model.gguf')))).toBe(sha(v1));

      const two = await publishBytes(registry, v2, 'v2', { aliases: ['latest'] });
      const fresh = two.chunkList.map((c, i) => ({ c, size: two.sizes[i] as number })).filter(({ c }) => !one.chunkList.includes(c));
      expect(fresh.length).toBeGreaterThan(0);
      expect(fresh.length).toBeLessThanOrEqual(2);
      server.reset();
      const update = await p.cli('update');
      expect(update.code).toBe(0);
      expect(sha(await readFile(join(p.dir, 'models', 'm', 'model.gguf')))).toBe(sha(v2));
      // On the wire: the new manifest and exactly the new chunks, nothing else from data/.
      await server.settled();
      const chunkRequests = server.requests.filter((r) => r.path.startsWith('/data/') && r.path !== `/data/${two.manifestHash}`);
      expect(chunkRequests.map((r) => r.path).sort()).toEqual(fresh.map(({ c }) => `/data/${c}`).sort());
      const freshBytes = fresh.reduce((sum, f) => sum + f.size, 0);
      expect(chunkRequests.reduce((sum, r) => sum + r.bytesSent, 0)).toBe(freshBytes);
      // `update` says what it fetched against what it reused.
      expect(update.stdout).toContain(`${formatBytes(freshBytes)} fetched, ${formatBytes(v2.length - freshBytes)} reused from the cache`);
    }, 120_000);

    it('the conformance model with variable chunk sizes (demo/var) still installs byte-exactly', async () => {
      const conformance = await startRegistryServer({ root: join(CONFORMANCE, 'registry') });
      try {
        const p = await cliProject(yamlFor(conformance.url, { var: { model: 'demo/var', version: 'v1' } }), temps);
        expect((await p.cli('install')).code).toBe(0);
        expect(EXPECTED['demo/var@v1']).toBeDefined();
        expect(mismatches(join(p.dir, 'models', 'var'), 'demo/var@v1')).toEqual([]);
      } finally {
        await conformance.close();
      }
    });
  });

  it('new models are published with cdc by default; a model keeps the chunking its versions use', async () => {
    const registry = await temp();
    const source = await temp();
    await writeFile(join(source, 'a.bin'), noise(300_000, 5));
    const manifestOf = async (r: PublishResult) => parseManifest(await readFile(join(registry, 'data', r.manifestHash)), r.manifestHash).manifest;
    const fresh = await publish({ sourceDir: source, registryDir: registry, model: 'test/new', version: 'v1' });
    expect(fresh.chunking).toBe('cdc');
    expect(await manifestOf(fresh)).toMatchObject({ chunk_size: CDC.max, chunk_sizes: [300_000] });
    // A model first published with fixed 64 KiB chunks stays on them, so v2 shares v1's chunks.
    const old = await publish({ sourceDir: source, registryDir: registry, model: 'test/old', version: 'v1', chunkSize: 64 * 1024 });
    await writeFile(join(source, 'b.txt'), 'appended file\n');
    const next = await publish({ sourceDir: source, registryDir: registry, model: 'test/old', version: 'v2' });
    expect(next.chunking).toBe('fixed');
    const [m1, m2] = [await manifestOf(old), await manifestOf(next)];
    expect(m2.chunk_size).toBe(64 * 1024);
    expect(m2.chunk_sizes).toBeUndefined();
    expect(m2.chunks.slice(0, -1)).toEqual(m1.chunks.slice(0, -1));
    // Republishing an existing version without flags gives the same manifest (nothing changes).
    const again = await publish({ sourceDir: source, registryDir: registry, model: 'test/old', version: 'v2' });
    expect(again).toMatchObject({ manifestHash: next.manifestHash, unchanged: true });
    // An explicit --chunking wins.
    const switched = await publish({ sourceDir: source, registryDir: registry, model: 'test/old', version: 'v3', chunking: 'cdc' });
    expect(switched.chunking).toBe('cdc');
  });

  it('publish refuses --chunk-size with --chunking cdc, and an unknown --chunking, with exit 2', async () => {
    const source = await temp();
    await mkdir(join(source, 'm'));
    await writeFile(join(source, 'm', 'a.bin'), 'hello');
    const p = await cliProject('version: 1\nmodels: {}\n', temps);
    const both = await p.cli('publish', join(source, 'm'), '--to', join(source, 'reg'), '--model', 'a/b', '--version', 'v1', '--chunking', 'cdc', '--chunk-size', '1MiB');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--chunk-size applies to --chunking fixed/);
    const bogus = await p.cli('publish', join(source, 'm'), '--to', join(source, 'reg'), '--model', 'a/b', '--version', 'v1', '--chunking', 'rolling');
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/invalid chunking "rolling"/);
  });
});

/** SHA-256 of the 256 table entries as 64-bit little-endian integers, in order (docs/cdc.md). */
const TABLE_SHA256 = 'e1d3936666d7ae7a977c958e9afcc75f90aaca758ce5fbe4ece61dffefe1912c';
const PINNED_SIZES = [10537644, 8465286, 8826542, 8737065, 9137152, 4627959];
const PINNED_CHUNKS_SHA256 = 'b471a0ce88413c06907e7d1e7da16a22c904cdc5b66c5cf7c84bcc88593de170';
