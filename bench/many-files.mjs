#!/usr/bin/env node
/**
 * Peak memory and time of installs with many files (issue #11 item 8, issue #16 "peak RSS").
 * Builds, once per case, a folder registry (models.json + data/<manifest sha256> + data/<chunk
 * sha256>, docs/SPEC.md "Registry wire format") and a project pointing at it, then measures with
 * `/usr/bin/time -f "%e s %U u %S s %M KB"` (wall, CPU, peak RSS): a cold install (lock written, empty cache), a no-op install,
 * `verify`, and an install from the warm cache into an empty models/ folder.
 *
 *   npm run build && node bench/many-files.mjs [--case empty|big|all] [--files N] [--size SIZE]
 *                                                [--dir DIR] [--node-args "--heap-prof ..."]
 *
 * Cases: `empty` (default --files 100000: every file empty, no chunks) and `big` (default --files
 * 2000 totalling --size 1GiB, 16 MiB chunks spanning file boundaries). Content is a deterministic
 * AES-CTR keystream, so the same arguments always build the same manifest hash. Measures only.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(REPO, 'bin', 'models.js');
const MiB = 1024 * 1024;
const CHUNK = 16 * MiB;

const { values: args } = parseArgs({
  options: {
    case: { type: 'string', default: 'all' },
    files: { type: 'string' },
    size: { type: 'string' },
    dir: { type: 'string', default: join(REPO, '.bench', 'many-files') },
    'node-args': { type: 'string', default: '' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log('usage: node bench/many-files.mjs [--case empty|big|all] [--files N] [--size SIZE] [--dir DIR] [--node-args "..."]');
  process.exit(0);
}

function parseSize(text) {
  const m = /^(\d+)\s*([kmg]?)i?b?$/i.exec(String(text).trim());
  if (!m) throw new Error(`not a size: ${text}`);
  return Number(m[1]) * { '': 1, k: 1024, m: MiB, g: 1024 * MiB }[m[2].toLowerCase()];
}

const sha = (bytes) => createHash('sha256').update(bytes).digest('hex');
/** Folders of 1,000 files each, two levels: a layout like a real many-file model. */
const pathOf = (i, n) => `part-${String(Math.floor(i / 1000)).padStart(3, '0')}/file-${String(i).padStart(String(n).length, '0')}.bin`;

/** Write the registry of `n` files totalling `total` bytes; returns the manifest hash. Idempotent. */
async function buildRegistry(dir, n, total) {
  const marker = join(dir, 'built.json');
  const wanted = JSON.stringify({ n, total, version: 1 });
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === wanted) return JSON.parse(await readFile(join(dir, 'manifest-hash.json'), 'utf8'));
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'data'), { recursive: true });
  const keystream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  const chunk = Buffer.alloc(CHUNK);
  let filled = 0;
  const chunks = [];
  const flush = async () => {
    if (filled === 0) return;
    const bytes = chunk.subarray(0, filled);
    const hash = sha(bytes);
    chunks.push(hash);
    await writeFile(join(dir, 'data', hash), bytes);
    filled = 0;
  };
  const files = [];
  for (let i = 0; i < n; i++) {
    const size = Math.floor(((i + 1) * total) / n) - Math.floor((i * total) / n);
    const bytes = size === 0 ? Buffer.alloc(0) : keystream.update(Buffer.alloc(size));
    files.push({ path: pathOf(i, n), size, sha256: sha(bytes) });
    for (let at = 0; at < size; ) {
      const take = Math.min(size - at, CHUNK - filled);
      bytes.copy(chunk, filled, at, at + take);
      filled += take;
      at += take;
      if (filled === CHUNK) await flush();
    }
  }
  await flush();
  const manifest = Buffer.from(JSON.stringify({ total_size: total, chunk_size: CHUNK, chunks, files }));
  const hash = sha(manifest);
  await writeFile(join(dir, 'data', hash), manifest);
  await writeFile(join(dir, 'models.json'), `${JSON.stringify({ bench: { many: { '1.0.0': { hash, metadata: { files: n } } } } }, null, 2)}\n`);
  await writeFile(join(dir, 'manifest-hash.json'), JSON.stringify(hash));
  await writeFile(marker, wanted);
  return hash;
}

function run(label, project, argv, env) {
  const nodeArgs = args['node-args'].split(' ').filter(Boolean);
  const res = spawnSync('/usr/bin/time', ['-f', '%e s %U u %S s %M KB', process.execPath, ...nodeArgs, CLI, ...argv], {
    cwd: project,
    env: { ...process.env, ...env, NO_COLOR: '1', CI: '1' },
    encoding: 'utf8',
    maxBuffer: 64 * MiB,
  });
  const timing = /([\d.]+) s ([\d.]+) u ([\d.]+) s (\d+) KB\s*$/.exec(res.stderr);
  if (res.status !== 0 || !timing) {
    throw new Error(`${label}: models ${argv.join(' ')} exited ${res.status}\n${res.stdout.slice(-2000)}\n${res.stderr.slice(-2000)}`);
  }
  return { label, command: `models ${argv.join(' ')}`, seconds: Number(timing[1]), cpu: Number(timing[2]) + Number(timing[3]), rssMB: Math.round(Number(timing[4]) / 1024) };
}

async function benchCase(name, n, total) {
  const work = resolve(args.dir, `${name}-${n}-${total}`);
  const registry = join(work, 'registry');
  const started = Date.now();
  const manifest = await buildRegistry(registry, n, total);
  console.error(`${name}: registry of ${n} files, ${total} bytes, manifest ${manifest.slice(0, 12)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  const project = join(work, 'project');
  const cache = join(work, 'cache');
  await rm(project, { recursive: true, force: true });
  await rm(cache, { recursive: true, force: true });
  await mkdir(project, { recursive: true });
  await writeFile(join(project, 'models.yaml'), `version: 1\nregistry: ${registry}\nroot: models\nmodels:\n  many:\n    model: bench/many\n    version: 1.0.0\n`);
  const env = { MODELS_CACHE_DIR: cache };
  spawnSync('sync');
  const rows = [run('cold install (lock + fetch)', project, ['install', '--quiet'], env)];
  rows.push(run('no-op install', project, ['install', '--quiet'], env));
  rows.push(run('no-op install --frozen', project, ['install', '--frozen', '--quiet'], env));
  rows.push(run('verify', project, ['verify', '--quiet'], env));
  await rm(join(project, 'models'), { recursive: true, force: true });
  rows.push(run('install from warm cache', project, ['install', '--frozen', '--quiet'], env));
  return { name, n, total, rows };
}

const cases = [];
if (args.case === 'empty' || args.case === 'all') cases.push(['empty', Number(args.files ?? 100_000), 0]);
if (args.case === 'big' || args.case === 'all') cases.push(['big', Number(args.files ?? 2000), parseSize(args.size ?? '1GiB')]);
if (cases.length === 0) throw new Error(`--case ${args.case}: expected empty, big or all`);

const lines = ['| case | run | wall | CPU (user + sys) | peak RSS |', '|---|---|---:|---:|---:|'];
for (const [name, n, total] of cases) {
  const result = await benchCase(name, n, total);
  for (const row of result.rows) lines.push(`| ${n} files, ${(total / MiB).toFixed(0)} MiB | ${row.label} | ${row.seconds.toFixed(2)} s | ${row.cpu.toFixed(2)} s | ${row.rssMB} MB |`);
}
console.log(lines.join('\n'));
