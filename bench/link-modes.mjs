#!/usr/bin/env node
/**
 * How installed files are placed from the shared cache: hardlink vs reflink vs copy, and the
 * default (`auto`: a hardlink only while no other project links the stored file, else reflink,
 * else copy). Publishes a 1 GiB one-file model and a 1 GiB model of 2,000 files into a folder
 * registry, installs each once into a first project (the cache then holds it, linked there), and
 * times a warm `models install --frozen` into a fresh second project per mode (median of --runs).
 *
 *   node bench/link-modes.mjs [--size 1GiB] [--files 2000] [--runs 3] [--dir .bench/link-modes]
 *
 * Measures only. Run `npm run build` first.
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(REPO, 'bin', 'models.js');
const { values } = parseArgs({ options: { size: { type: 'string', default: '1GiB' }, files: { type: 'string', default: '2000' }, runs: { type: 'string', default: '3' }, dir: { type: 'string', default: join(REPO, '.bench', 'link-modes') } } });
const SIZE = Number(/^(\d+)GiB$/.exec(values.size)?.[1] ?? 0) * 2 ** 30 || Number(/^(\d+)MiB$/.exec(values.size)?.[1] ?? 0) * 2 ** 20;
const FILES = Number(values.files);
const RUNS = Number(values.runs);
const DIR = resolve(values.dir);

function run(args, cwd, env = {}) {
  const started = performance.now();
  const child = spawnSync(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, CI: 'true', ...env }, encoding: 'utf8' });
  return { code: child.status, stderr: child.stderr, ms: performance.now() - started };
}

async function dataset(kind) {
  const registry = join(DIR, 'reg', kind);
  if (existsSync(join(registry, 'models.json'))) return registry; // published by an earlier run
  const raw = join(DIR, 'raw', kind);
  await rm(raw, { recursive: true, force: true });
  const count = kind === 'single' ? 1 : FILES;
  const buffer = Buffer.alloc(Math.ceil(SIZE / count));
  for (let i = 0; i < count; i++) {
    const path = join(raw, count === 1 ? 'model.bin' : `d${i % 20}/f${i}.bin`);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, randomFillSync(buffer));
  }
  const published = run(['publish', raw, '--to', registry, '--model', `bench/${kind}`, '--version', 'v1', '--quiet'], DIR);
  if (published.code !== 0) throw new Error(published.stderr);
  await rm(raw, { recursive: true, force: true });
  return registry;
}

async function project(name, registry, kind) {
  const dir = join(DIR, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'models.yaml'), `version: 1\nregistry: ${registry}\nmodels:\n  m:\n    model: bench/${kind}\n    version: v1\n`);
  return dir;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
await mkdir(DIR, { recursive: true });
const cache = join(DIR, 'cache');
const rows = [];
for (const kind of ['single', 'many']) {
  const registry = await dataset(kind);
  await rm(cache, { recursive: true, force: true });
  const first = await project(`first-${kind}`, registry, kind);
  const cold = run(['install'], first, { MODELS_CACHE_DIR: cache });
  if (cold.code !== 0) throw new Error(cold.stderr);
  rows.push([kind, 'cold install (auto: hardlink, the only project)', `${(cold.ms / 1000).toFixed(2)} s`]);
  for (const mode of ['hardlink', 'reflink', 'copy', 'auto']) {
    const times = [];
    let failure;
    for (let i = 0; i < RUNS; i++) {
      const second = await project(`second-${kind}`, registry, kind);
      await copyFile(join(first, 'models.lock'), join(second, 'models.lock'));
      spawnSync('sync');
      const warm = run(['install', '--frozen', '--link', mode], second, { MODELS_CACHE_DIR: cache });
      if (warm.code !== 0) {
        failure = warm.stderr.split('\n')[0];
        break;
      }
      times.push(warm.ms);
    }
    rows.push([kind, `warm install, second project, --link ${mode}`, failure ? `fails: ${failure}` : `${(median(times) / 1000).toFixed(2)} s`]);
  }
}
const fs = spawnSync('df', ['-T', DIR], { encoding: 'utf8' }).stdout.trim().split('\n').pop()?.split(/\s+/)[1];
console.log(`file system of ${DIR}: ${fs}; ${values.size} per model, ${FILES} files in the many-file model, median of ${RUNS}; load average ${loadavg().map((n) => n.toFixed(1)).join(' ')}\n`);
console.log('| model | measurement | time |\n|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
