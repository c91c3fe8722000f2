/**
 * The archive layer for `url:` entries (src/archive): zip, tar and tar.gz built in the tests with
 * the real writers (yazl, node-tar) or by hand for hostile cases, extracted into a staging folder in
 * a real temp tree, with a sentinel folder beside it that nothing may touch.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { create as tarCreate } from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import { type ExtractedFile, extractArchive, listArchive } from '../src/archive/extract.js';
import { isModelsError } from '../src/util/errors.js';
import { type TarItem, type ZipItem, paxData, patchBytes, tarBuffer, zeroTarGzBomb, zeroZipBomb, zipBuffer } from './support/archives.js';
import { REPO } from './support/cli.js';

const temps: string[] = [];
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

/** A temp tree: the staging folder `dest` (not created) and an empty `sentinel` folder beside it. */
async function workspace() {
  const root = await mkdtemp(join(tmpdir(), 'xprim-archive-'));
  temps.push(root);
  await mkdir(join(root, 'sentinel'));
  return { root, dest: join(root, 'dest') };
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The source tree every format packs: text, binary, empty, executable, deep and non-ASCII files. */
const SOURCE: Record<string, { data: Buffer; exec?: boolean }> = {
  'config.json': { data: Buffer.from('{"sample_rate": 16000}\n') },
  'weights.bin': { data: randomBytes(1024 * 1024 + 3) },
  'empty.txt': { data: Buffer.alloc(0) },
  'bin/run.sh': { data: Buffer.from('#!/bin/sh\necho run\n'), exec: true },
  'deep/a/b/c.txt': { data: Buffer.from('deep\n') },
  'données/é.txt': { data: Buffer.from('unicode\n') },
};

function expected(prefix: string): ExtractedFile[] {
  return Object.entries(SOURCE)
    .map(([path, f]) => ({ path: prefix + path, size: f.data.length, sha256: sha256(f.data) }))
    .sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

async function sourceFolder(root: string): Promise<string> {
  const dir = join(root, 'src');
  for (const [path, f] of Object.entries(SOURCE)) {
    await mkdir(join(dir, 'model', path, '..'), { recursive: true });
    await writeFile(join(dir, 'model', path), f.data);
    await chmod(join(dir, 'model', path), f.exec ? 0o755 : 0o644);
  }
  return dir;
}

/** The same tree as a zip (yazl), a tar and a tar.gz (node-tar), all under a top folder `model/`. */
async function buildAll(root: string): Promise<Record<'zip' | 'tar' | 'tar.gz', string>> {
  const src = await sourceFolder(root);
  const items: ZipItem[] = [{ name: 'model/', dir: true }];
  for (const [path, f] of Object.entries(SOURCE)) items.push({ name: `model/${path}`, data: f.data, mode: f.exec ? 0o100755 : 0o100644 });
  const zip = join(root, 'model.zip');
  await writeFile(zip, await zipBuffer(items));
  const tar = join(root, 'model.tar');
  const tgz = join(root, 'model.tar.gz');
  await tarCreate({ cwd: src, file: tar, portable: true }, ['model']);
  await tarCreate({ cwd: src, file: tgz, gzip: true, portable: true }, ['model']);
  return { zip, tar, 'tar.gz': tgz };
}

async function walk(dir: string, base = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = base ? `${base}/${entry.name}` : entry.name;
    out.push(rel);
    if (entry.isDirectory()) out.push(...(await walk(join(dir, entry.name), rel)));
  }
  return out;
}

/** Nothing outside dest (the archives were removed), no symlink anywhere, the sentinel untouched. */
async function expectContained(root: string) {
  expect((await readdir(root)).sort()).toEqual(['dest', 'sentinel']);
  expect(await readdir(join(root, 'sentinel'))).toEqual([]);
  for (const rel of await walk(root)) {
    expect((await lstat(join(root, rel))).isSymbolicLink(), `${rel} is a symlink`).toBe(false);
  }
}

/** Expect a refusal: exit 6, naming the archive (and the entry, when given). */
async function expectRefused(promise: Promise<unknown>, archive: string, entry?: string): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isModelsError(error), `${archive}: expected a ModelsError, got ${String(error)}`).toBe(true);
  if (!isModelsError(error)) throw error;
  expect(error.code).toBe('E_INTEGRITY');
  expect(error.exitCode).toBe(6);
  expect(error.message).toContain(`archive ${archive}`);
  if (entry !== undefined) expect(error.message).toContain(JSON.stringify(entry).slice(0, 150));
  expect(error.hint).toBeTruthy();
  return error.message;
}

describe('extracting well-formed archives', () => {
  it('unpacks zip, tar and tar.gz byte-exactly with the right hashes and modes, with and without strip', async () => {
    const { root, dest } = await workspace();
    const archives = await buildAll(root);
    for (const [format, path] of Object.entries(archives) as ['zip' | 'tar' | 'tar.gz', string][]) {
      for (const strip of [0, 1]) {
        const out = join(dest, `${format}-${strip}`);
        const prefix = strip === 0 ? 'model/' : '';
        const files = await extractArchive({ archivePath: path, format, strip, destDir: out });
        expect(files, `${format} strip ${strip}`).toEqual(expected(prefix));
        for (const [rel, f] of Object.entries(SOURCE)) {
          const target = join(out, prefix + rel);
          expect((await readFile(target)).equals(f.data), `${format}: ${rel} bytes`).toBe(true);
          expect((await stat(target)).mode & 0o7777, `${format}: ${rel} mode`).toBe(f.exec ? 0o755 : 0o644);
        }
        expect((await stat(join(out, prefix + 'deep/a'))).mode & 0o7777).toBe(0o755);
      }
    }
  });

  it('lists an archive (dry run) with the same files and hashes, writing nothing', async () => {
    const { root, dest } = await workspace();
    const archives = await buildAll(root);
    for (const [format, path] of Object.entries(archives) as ['zip' | 'tar' | 'tar.gz', string][]) {
      expect(await listArchive({ archivePath: path, format: 'auto', strip: 1 }), format).toEqual(expected(''));
    }
    await expect(stat(dest)).rejects.toThrow();
  });

  it('detects the format from the name, else from the first bytes; refuses a mislabelled or unknown file', async () => {
    const { root, dest } = await workspace();
    const archives = await buildAll(root);
    const named: [string, string][] = [
      [archives.zip, 'M.ZIP'],
      [archives.tar, 'm.tar'],
      [archives['tar.gz'], 'm.tar.gz'],
      [archives['tar.gz'], 'm.tgz'],
    ];
    for (const [path, name] of named) {
      expect(await listArchive({ archivePath: path, name, format: 'auto', strip: 1 }), name).toEqual(expected(''));
    }
    // As the store holds them: named by hash, no extension.
    for (const path of Object.values(archives)) {
      const stored = join(root, sha256(await readFile(path)));
      await copyFile(path, stored);
      expect(await listArchive({ archivePath: stored, name: 'download', format: 'auto', strip: 1 })).toEqual(expected(''));
    }
    expect(await listArchive({ archivePath: archives['tar.gz'], format: 'tgz', strip: 1 })).toEqual(expected(''));
    const message = await expectRefused(extractArchive({ archivePath: archives['tar.gz'], name: 'vosk.zip', format: 'auto', destDir: dest }), 'vosk.zip');
    expect(message).toContain('declared as zip');
    await expectRefused(extractArchive({ archivePath: archives.zip, name: 'm.bin', format: 'tar', destDir: dest }), 'm.bin');
    const junk = join(root, 'junk');
    await writeFile(junk, randomBytes(2048));
    expect(await expectRefused(listArchive({ archivePath: junk, format: 'auto' }), 'junk')).toContain('not a zip, tar or tar.gz');
    await expectRefused(listArchive({ archivePath: junk, format: 'tar' }), 'junk');
  });

  it('counts strip components as GNU tar does, skips folders stripped to nothing, refuses a file stripped to nothing', async () => {
    const { root, dest } = await workspace();
    const tar = join(root, 'dot.tar');
    await writeFile(
      tar,
      tarBuffer([
        { name: './', type: '5' },
        { name: './top/', type: '5' },
        { name: './top//a.txt', data: Buffer.from('a') },
        { name: './top/sub/./b.txt', data: Buffer.from('b'), mode: 0o4755 },
      ]),
    );
    const files = await extractArchive({ archivePath: tar, format: 'tar', strip: 2, destDir: dest });
    expect(files.map((f) => f.path)).toEqual(['a.txt', 'sub/b.txt']);
    // setuid dropped: executable, nothing more.
    expect((await stat(join(dest, 'sub/b.txt'))).mode & 0o7777).toBe(0o755);
    expect((await listArchive({ archivePath: tar, format: 'tar', strip: 1 })).map((f) => f.path)).toEqual(['top/a.txt', 'top/sub/b.txt']);
    const message = await expectRefused(listArchive({ archivePath: tar, format: 'tar', strip: 3 }), 'dot.tar', './top//a.txt');
    expect(message).toContain('no name left after strip: 3');
  });
});

type Case = { label: string; why: string; entry?: string; items: TarItem[] | ZipItem[]; patch?: [string, string][]; limits?: Record<string, number>; strip?: number };

const ok = Buffer.from('ok');
const LONG_SEGMENT = 'x'.repeat(256);
const LONG_PATH = Array.from({ length: 17 }, () => 'y'.repeat(250)).join('/');

function tarCases(root: string): Case[] {
  const abs = join(root, 'abs-evil.txt');
  return [
    { label: '.. segment', why: '".." segment', entry: '../evil.txt', items: [{ name: '../evil.txt', data: ok }] },
    { label: 'nested ..', why: '".." segment', entry: 'a/../../evil.txt', items: [{ name: 'a/../../evil.txt', data: ok }] },
    { label: 'absolute path', why: 'absolute path', entry: abs, items: [{ name: abs, data: ok }] },
    { label: 'drive letter', why: 'drive letter', entry: 'C:/evil.txt', items: [{ name: 'C:/evil.txt', data: ok }] },
    { label: 'backslash', why: 'backslash', entry: '..\\evil.txt', items: [{ name: '..\\evil.txt', data: ok }] },
    { label: 'symlink out', why: 'symbolic link', entry: 'link', items: [{ name: 'link', type: '2', linkname: '../../sentinel' }, { name: 'link/x.txt', data: ok }] },
    { label: 'symlink inside', why: 'symbolic link', entry: 'link', items: [{ name: 'a.txt', data: ok }, { name: 'link', type: '2', linkname: 'a.txt' }] },
    { label: 'hard link', why: 'hard link', entry: 'hard', items: [{ name: 'a.txt', data: ok }, { name: 'hard', type: '1', linkname: 'a.txt' }] },
    { label: 'char device', why: 'device', entry: 'tty', items: [{ name: 'tty', type: '3' }] },
    { label: 'block device', why: 'device', entry: 'disk', items: [{ name: 'disk', type: '4' }] },
    { label: 'FIFO', why: 'FIFO', entry: 'pipe', items: [{ name: 'pipe', type: '6' }] },
    { label: 'GNU dump dir', why: 'unsupported type', entry: 'dump', items: [{ name: 'dump', type: 'D' }] },
    { label: 'sparse file', why: 'unsupported type', entry: 'sparse', items: [{ name: 'sparse', type: 'S', data: ok }] },
    { label: 'duplicate file', why: 'appears twice', entry: 'a.txt', items: [{ name: 'a.txt', data: ok }, { name: 'a.txt', data: ok }] },
    { label: 'duplicate ignoring case', why: 'appears twice', entry: 'A.TXT', items: [{ name: 'a.txt', data: ok }, { name: 'A.TXT', data: ok }] },
    { label: 'duplicate after strip', why: 'appears twice', entry: 'q/a.txt', strip: 1, items: [{ name: 'p/a.txt', data: ok }, { name: 'q/a.txt', data: ok }] },
    { label: 'file then folder', why: 'an earlier entry is a file', entry: 'x/y.txt', items: [{ name: 'x', data: ok }, { name: 'x/y.txt', data: ok }] },
    { label: 'folder then file', why: 'both a file and a folder', entry: 'x', items: [{ name: 'x/', type: '5' }, { name: 'x', data: ok }] },
    { label: 'segment over 255 bytes', why: 'longer than 255 bytes', entry: LONG_SEGMENT, items: [{ name: 'pax', type: 'x', data: paxData({ path: LONG_SEGMENT }) }, { name: 'short', data: ok }] },
    { label: 'path over 4096 bytes', why: 'longer than 4096 bytes', items: [{ name: 'pax', type: 'x', data: paxData({ path: LONG_PATH }) }, { name: 'short', data: ok }] },
    { label: 'control character', why: 'control or NUL', entry: 'a\u0001b.txt', items: [{ name: 'a\u0001b.txt', data: ok }] },
    // (A NUL cannot reach us from a tar: header fields and pax values end at the first NUL.)
    { label: '.. in a pax path', why: '".." segment', entry: 'long/../../evil.txt', items: [{ name: 'pax', type: 'x', data: paxData({ path: 'long/../../evil.txt' }) }, { name: 'short', data: ok }] },
    { label: 'metadata over 1 MiB', why: 'over 1 MiB', items: [{ name: 'pax', type: 'x', data: Buffer.alloc(1024 * 1024 + 1, 0x41) }, { name: 'short', data: ok }] },
    { label: 'too many entries', why: 'more than', limits: { maxEntries: 3 }, items: ['a', 'b', 'c', 'd'].map((name) => ({ name, data: ok })) },
    { label: 'over the total bytes', why: 'past the limit', entry: 'b', limits: { maxTotalBytes: 3 }, items: [{ name: 'a', data: ok }, { name: 'b', data: ok }] },
    { label: 'bad header checksum', why: 'checksum failure', items: [{ name: 'a.txt', data: ok }, { name: 'b.txt', data: ok, badChecksum: true }] },
    { label: 'truncated', why: 'Truncated', items: [{ name: 'a.txt', data: ok }, { name: 'cut.bin', size: 4096, data: Buffer.alloc(600) }] },
  ];
}

function zipCases(root: string): Case[] {
  const abs = join(root, 'abs-evil.txt');
  const placeholder = (s: string) => s.replace(/[^/]/g, 'q');
  return [
    { label: '.. segment', why: '".." segment', entry: '../evil.txt', items: [{ name: 'good.txt', data: ok }, { name: 'xx/evil.txt', data: ok }], patch: [['xx/evil.txt', '../evil.txt']] },
    { label: 'absolute path', why: 'absolute path', entry: abs, items: [{ name: placeholder(abs).slice(1) + 'q', data: ok }], patch: [[placeholder(abs).slice(1) + 'q', abs]] },
    { label: 'drive letter', why: 'drive letter', entry: 'C:/evil.txt', items: [{ name: 'Cq/evil.txt', data: ok }], patch: [['Cq/evil.txt', 'C:/evil.txt']] },
    { label: 'backslash', why: 'backslash', entry: '..\\evil.txt', items: [{ name: 'qqqevil.txt', data: ok }], patch: [['qqqevil.txt', '..\\evil.txt']] },
    { label: 'symlink', why: 'symbolic link', entry: 'link', items: [{ name: 'link', data: Buffer.from('../../sentinel'), mode: 0o120777 }] },
    { label: 'char device', why: 'device', entry: 'tty', items: [{ name: 'tty', mode: 0o020644 }] },
    { label: 'block device', why: 'device', entry: 'disk', items: [{ name: 'disk', mode: 0o060644 }] },
    { label: 'FIFO', why: 'FIFO', entry: 'pipe', items: [{ name: 'pipe', mode: 0o010644 }] },
    { label: 'socket', why: 'socket', entry: 'sock', items: [{ name: 'sock', mode: 0o140644 }] },
    { label: 'duplicate file', why: 'appears twice', entry: 'a.txt', items: [{ name: 'a.txt', data: ok }, { name: 'a.txt', data: ok }] },
    { label: 'duplicate ignoring case', why: 'appears twice', entry: 'A.txt', items: [{ name: 'a.txt', data: ok }, { name: 'A.txt', data: ok }] },
    { label: 'file then folder', why: 'both a file and a folder', entry: 'x/', items: [{ name: 'x', data: ok }, { name: 'x/', dir: true }] },
    { label: 'control character', why: 'control or NUL', entry: 'a\u0001b.txt', items: [{ name: 'aqb.txt', data: ok }], patch: [['aqb.txt', 'a\u0001b.txt']] },
    { label: 'NUL', why: 'control or NUL', entry: 'a\u0000b.txt', items: [{ name: 'aqb.txt', data: ok }], patch: [['aqb.txt', 'a\u0000b.txt']] },
    { label: 'segment over 255 bytes', why: 'longer than 255 bytes', entry: LONG_SEGMENT, items: [{ name: LONG_SEGMENT, data: ok }] },
    { label: 'too many entries', why: 'more than', limits: { maxEntries: 3 }, items: ['a', 'b', 'c', 'd'].map((name) => ({ name, data: ok })) },
    { label: 'over the total bytes', why: 'past the limit', entry: 'b', limits: { maxTotalBytes: 3 }, items: [{ name: 'a', data: ok }, { name: 'b', data: ok }] },
  ];
}

describe('refusing hostile archives whole (exit 6), writing nothing outside the staging folder', () => {
  it.each(['tar', 'tar.gz'] as const)('%s: every unsafe entry kind', async (format) => {
    const { root, dest } = await workspace();
    for (const c of tarCases(root)) {
      const raw = tarBuffer(c.items as TarItem[], { end: c.label !== 'truncated' });
      const name = `${c.label.replace(/\W+/g, '-')}.${format}`;
      const path = join(root, name);
      await writeFile(path, format === 'tar' ? raw : gzipSync(raw));
      const destDir = join(dest, name);
      const message = await expectRefused(extractArchive({ archivePath: path, format, destDir, strip: c.strip ?? 0, limits: c.limits }), name, c.entry);
      expect(message, c.label).toContain(c.why);
      await rm(path);
    }
    await expectContained(root);
  });

  it('zip: every unsafe entry kind, refused before any file is written', async () => {
    const { root, dest } = await workspace();
    for (const c of zipCases(root)) {
      let bytes = await zipBuffer(c.items as ZipItem[]);
      for (const [from, to] of c.patch ?? []) bytes = patchBytes(bytes, from, to);
      const name = `${c.label.replace(/\W+/g, '-')}.zip`;
      const path = join(root, name);
      await writeFile(path, bytes);
      const destDir = join(dest, name);
      const message = await expectRefused(extractArchive({ archivePath: path, format: 'zip', destDir, strip: c.strip ?? 0, limits: c.limits }), name, c.entry);
      expect(message, c.label).toContain(c.why);
      // The whole central directory is checked first: not even the good entries were written.
      expect(await walk(destDir), c.label).toEqual([]);
      await rm(path);
    }
    await expectContained(root);
  });

  it('zip: an entry holding more bytes than it declares, a damaged CRC, an expansion bomb, a damaged file', async () => {
    const { root, dest } = await workspace();
    const liar = join(root, 'liar.zip');
    await zeroZipBomb(liar, 4, 1000);
    expect(await expectRefused(extractArchive({ archivePath: liar, format: 'zip', destDir: join(dest, 'liar') }), 'liar.zip', 'zeros.bin')).toMatch(/more bytes than its declared size|too many bytes/);
    expect((await stat(join(dest, 'liar', 'zeros.bin'))).size).toBeLessThanOrEqual(1000);
    const badCrc = join(root, 'crc.zip');
    await zeroZipBomb(badCrc, 2, 2 * 1024 * 1024); // CRC left at 0
    expect(await expectRefused(extractArchive({ archivePath: badCrc, format: 'zip', destDir: join(dest, 'crc') }), 'crc.zip', 'zeros.bin')).toContain('CRC-32');
    const bomb = join(root, 'bomb.zip');
    await zeroZipBomb(bomb, 128, 128 * 1024 * 1024, { crc: true });
    expect(await expectRefused(extractArchive({ archivePath: bomb, format: 'zip', destDir: join(dest, 'bomb') }), 'bomb.zip')).toContain('times its own size');
    expect(await walk(join(dest, 'bomb'))).toEqual([]);
    const cut = join(root, 'cut.zip');
    await writeFile(cut, (await readFile(bomb)).subarray(0, 5000));
    expect(await expectRefused(listArchive({ archivePath: cut, format: 'zip' }), 'cut.zip')).toContain('not a valid zip');
  });

  it('tar.gz: stops reading at the end-of-archive blocks, so junk after them is neither buffered nor counted', async () => {
    const { root, dest } = await workspace();
    const path = join(root, 'tail.tgz');
    // 80 MiB of zeros after the end blocks: read on, they would pass the expansion bound.
    const zeros = gzipSync(Buffer.alloc(1024 * 1024));
    await writeFile(path, Buffer.concat([gzipSync(tarBuffer([{ name: 'a.txt', data: ok }])), ...Array<Buffer>(80).fill(zeros)]));
    expect(await extractArchive({ archivePath: path, format: 'tar.gz', destDir: dest })).toEqual([{ path: 'a.txt', size: 2, sha256: sha256(ok) }]);
  }, 15_000);

  it('tar.gz: a stream that expands beyond the ratio, and a tar compressed twice', async () => {
    const { root, dest } = await workspace();
    const bomb = join(root, 'bomb.tgz');
    await zeroTarGzBomb(bomb, 80);
    expect(await expectRefused(extractArchive({ archivePath: bomb, format: 'tar.gz', destDir: dest }), 'bomb.tgz')).toContain('times its own size');
    const twice = join(root, 'twice.tar.gz');
    await writeFile(twice, gzipSync(gzipSync(tarBuffer([{ name: 'a.txt', data: ok }]))));
    expect(await expectRefused(listArchive({ archivePath: twice, format: 'tar.gz' }), 'twice.tar.gz')).toContain('compressed twice');
  });
});

describe('bounded memory and prompt abort', () => {
  it('refuses 1 GiB zero bombs and streams a 160 MiB entry with peak RSS under 150 MB (child process)', async () => {
    const { root } = await workspace();
    const GiB = 1024 * 1024 * 1024;
    await zeroZipBomb(join(root, 'liar.zip'), 1024, 4096);
    await zeroZipBomb(join(root, 'big.zip'), 1024, GiB);
    await zeroTarGzBomb(join(root, 'big.tgz'), 1024);
    await zeroZipBomb(join(root, 'ok.zip'), 160, 160 * 1024 * 1024, { crc: true });
    await zeroTarGzBomb(join(root, 'ok.tgz'), 160);
    const script = join(root, 'child.mjs');
    await writeFile(
      script,
      `import { extractArchive } from ${JSON.stringify(join(REPO, 'lib/archive/extract.js'))};
const root = ${JSON.stringify(root)};
const runs = [
  ['liar.zip', {}], ['big.zip', {}], ['big.zip', { maxRatio: 1e9, maxTotalBytes: 512 * 1024 * 1024 }],
  ['big.tgz', {}], ['big.tgz', { maxRatio: 1e9, maxTotalBytes: 512 * 1024 * 1024 }],
  ['ok.zip', { maxRatio: 1e9 }], ['ok.tgz', { maxRatio: 1e9 }],
];
const results = [];
for (const [name, limits] of runs) {
  try {
    const files = await extractArchive({ archivePath: root + '/' + name, format: 'auto', destDir: root + '/out-' + results.length, limits });
    results.push({ name, files });
  } catch (error) {
    results.push({ name, exitCode: error.exitCode, message: error.message });
  }
}
console.log(JSON.stringify({ results, maxRssKiB: process.resourceUsage().maxRSS }));
`,
    );
    const { stdout } = await promisify(execFile)(process.execPath, [script]);
    const { results, maxRssKiB } = JSON.parse(stdout) as { results: { name: string; exitCode?: number; message?: string; files?: ExtractedFile[] }[]; maxRssKiB: number };
    const refused = results.slice(0, 5);
    for (const r of refused) expect(r.exitCode, `${r.name}: ${r.message ?? 'extracted'}`).toBe(6);
    expect(refused.map((r) => r.message)).toEqual([
      expect.stringMatching(/more bytes than its declared size|too many bytes/),
      expect.stringContaining('times its own size'),
      expect.stringContaining('past the limit of 536870912 bytes'),
      expect.stringContaining('times its own size'),
      expect.stringContaining('past the limit of 536870912 bytes'),
    ]);
    const zeros = createHash('sha256');
    const mib = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 160; i++) zeros.update(mib);
    const digest = zeros.digest('hex');
    // 160 MiB streamed through: more than the RSS bound, so buffering an entry whole would fail it.
    for (const r of results.slice(5)) expect(r.files, r.name).toEqual([{ path: 'zeros.bin', size: 160 * 1024 * 1024, sha256: digest }]);
    const maxRssMiB = maxRssKiB / 1024;
    expect(maxRssMiB, `peak RSS ${maxRssMiB.toFixed(0)} MiB`).toBeLessThan(150);
  });

  it.each(['zip', 'tar.gz'] as const)('%s: aborting mid-extraction stops promptly and closes every handle', async (format) => {
    const { root, dest } = await workspace();
    const path = join(root, `big.${format}`);
    if (format === 'zip') await zeroZipBomb(path, 64, 64 * 1024 * 1024, { crc: true });
    else await zeroTarGzBomb(path, 64);
    // Open descriptors, where the system lists them (Linux); elsewhere this check is a no-op.
    const fds = async () => (await readdir('/proc/self/fd').catch(() => [])).length;
    const before = await fds();
    const controller = new AbortController();
    let progressed = 0;
    const started = Date.now();
    const error = await extractArchive({
      archivePath: path,
      format,
      destDir: dest,
      limits: { maxRatio: 1e9 },
      signal: controller.signal,
      onProgress: (bytes) => {
        progressed = bytes;
        if (bytes >= 4 * 1024 * 1024) controller.abort();
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isModelsError(error) && error.code, String(error)).toBe('E_ABORTED');
    expect(isModelsError(error) && error.exitCode).toBe(130);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(progressed).toBeLessThan(32 * 1024 * 1024);
    expect((await stat(join(dest, 'zeros.bin'))).size).toBeLessThan(32 * 1024 * 1024);
    // Not more than before (none leaked); one fewer happens when an earlier test's handle is collected meanwhile.
    expect(await fds()).toBeLessThanOrEqual(before);
  });
});
