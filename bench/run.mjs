#!/usr/bin/env node
/**
 * `npm run bench`: time `models install` / `verify` against what a user would script by hand
 * (curl + openssl, aria2c, cp, node -e 0), on a 1 GiB single-file model and a 1 GiB model of
 * 2,000 files, served from one local static server (nginx when installed, else the project's own),
 * and an hf: entry with a 1 GiB LFS file through the stand-in Hugging Face Hub (bench/hub.mjs).
 *
 *   node bench/run.mjs [--size 1GiB] [--files 2000] [--runs 3] [--dir .bench] [--quick]
 *                      [--server auto|nginx|node] [--profile] [--out bench/results.md]
 *
 * Measures only; it never changes how the tool works. Datasets and registries are kept in the work
 * dir and reused between runs (publish is idempotent). See docs/readme/performance.md.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { cpus, loadavg, totalmem, release } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { summariseProfile, formatSummary } from './profile-summary.mjs';
import { benchTemplateFix, templateFixTable } from './template-fix.mjs';
import { freePort, writeRandomFile } from './support.mjs';
import { benchOciLayer, ociLayerTable } from './oci-layer.mjs';
import { benchHub, hubTable } from './hub.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(REPO, 'bin', 'models.js');
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// options

const USAGE = `usage: node bench/run.mjs [options]
  --size SIZE        bytes per model (default 1GiB; --quick: 64MiB)
  --files N          files in the many-file model (default 2000; --quick: 200)
  --runs N           runs per measurement, median reported (default 3, at least 3)
  --chunk-size SIZE  publish chunk size (default 16MiB)
  --dir DIR          work dir (default <repo>/.bench)
  --server KIND      auto (nginx when installed), nginx or node
  --only KIND        single, many, template, oci or hub (default all)
  --profile          also profile one cold install per model with node --cpu-prof
  --out FILE         markdown results (default bench/results.md; --quick: <dir>/results-quick.md)
  --serve            only build, serve and lock the projects, then wait (for manual profiling)
  --quick            smoke run (well under a minute): --size 64MiB --files 200`;

function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?$/i.exec(String(text).trim());
  if (!m) throw new Error(`not a size: ${text} (e.g. 1GiB, 64MiB, 1048576)`);
  const unit = (m[2] ?? '').toLowerCase().replace(/i?b$/, '');
  const factor = { '': 1, k: 1024, m: MiB, g: 1024 * MiB, t: 1024 * 1024 * MiB }[unit];
  return Math.round(Number(m[1]) * factor);
}

function formatSize(bytes) {
  if (bytes % (1024 * MiB) === 0) return `${bytes / (1024 * MiB)}GiB`;
  if (bytes % MiB === 0) return `${bytes / MiB}MiB`;
  return `${bytes}B`;
}

const { values: args } = parseArgs({
  options: {
    size: { type: 'string' },
    files: { type: 'string' },
    runs: { type: 'string', default: '3' },
    'chunk-size': { type: 'string', default: '16MiB' },
    dir: { type: 'string', default: join(REPO, '.bench') },
    server: { type: 'string', default: 'auto' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    out: { type: 'string' },
    quick: { type: 'boolean', default: false },
    serve: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const SIZE = parseSize(args.size ?? (args.quick ? '64MiB' : '1GiB'));
const FILES = Number(args.files ?? (args.quick ? 200 : 2000));
const RUNS = Math.max(3, Number(args.runs));
const CHUNK = args['chunk-size'];
const WORK = resolve(args.dir);
const OUT = resolve(args.out ?? (args.quick ? join(WORK, 'results-quick.md') : join(REPO, 'bench', 'results.md')));
if (!Number.isInteger(FILES) || FILES < 1 || SIZE < FILES) throw new Error('--files must be a positive integer no larger than --size');
if (!['auto', 'nginx', 'node'].includes(args.server)) throw new Error('--server: expected auto, nginx or node');
const KINDS = args.only ? [args.only] : ['single', 'many', 'template', 'oci', 'hub'];
if (!KINDS.every((k) => ['single', 'many', 'template', 'oci', 'hub'].includes(k))) throw new Error('--only: expected single, many, template, oci or hub');
/** The install/verify rows; `template` is the delta-update row (bench/template-fix.mjs), `oci` the OCI layer row (bench/oci-layer.mjs), `hub` the hf: row (bench/hub.mjs). */
const MODEL_KINDS = KINDS.filter((k) => k !== 'template' && k !== 'oci' && k !== 'hub');

// ---------------------------------------------------------------------------------------------
// processes

/** A child env without anything that would change what is measured (proxies, our own settings). */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(MODELS_|https?_proxy$|no_proxy$|all_proxy$|NODE_OPTIONS$)/i.test(k)) continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: '1', CI: '1', ...extra };
}

async function which(name) {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Run a command; resolves with its exit code, stdout and the tail of its stderr. */
function exec(cmd, argv, { cwd = WORK, env = cleanEnv(), capture = true } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, argv, { cwd, env, stdio: ['ignore', capture ? 'pipe' : 'ignore', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => {
      if (stdout.length < 1 << 20) stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-8192);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

async function mustExec(cmd, argv, options) {
  const r = await exec(cmd, argv, options);
  if (r.code !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}

const sh = (script, options) => mustExec('/bin/sh', ['-c', script], options);
const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

let cachesDropped; // whether this bench may drop the kernel's caches (root on Linux): tried once

/**
 * Before a cold or warm run (untimed): write everything back (`sync`) and, where the bench may, drop the
 * kernel's caches, then read back in what a run reads (the served files in `warm`, node, the CLI,
 * curl, openssl, aria2c), so neither side reads the disk. Why drop: on a journal-less ext4 (the
 * bench VMs'), creating a file soon after thousands were deleted walks every recently deleted inode
 * whose inode table block is still cached (the kernel's recently_deleted(), a 60 s window). `perf`
 * showed up to 0.8 ms per create, growing with what earlier runs deleted, a cost a fresh machine
 * never pays; it fell hardest on curl, which creates its files on its one thread.
 */
async function settle(...warm) {
  await sh('sync');
  if (cachesDropped === false) return;
  cachesDropped = await writeFile('/proc/sys/vm/drop_caches', '3').then(() => true, () => false);
  if (!cachesDropped) return;
  const files = [join(REPO, 'lib'), join(REPO, 'bin'), ...warm].filter((p) => existsSync(p)).map(q).join(' ');
  await sh(`cat ${q(process.execPath)} > /dev/null; find ${files} -type f -print0 | xargs -0 cat > /dev/null; curl --version > /dev/null; openssl version > /dev/null; aria2c --version > /dev/null 2>&1 || true`);
}

let TIME; // /usr/bin/time, when present: peak RSS of the command and all its descendants
const RSS_HOOK = join(WORK, 'rss-hook.cjs');

/**
 * Time one command: wall clock from spawn to exit, and peak RSS (max over the process and its
 * descendants) from `/usr/bin/time -f %M`; without it, node commands report their own maxRSS.
 */
async function timed(cmd, argv, options = {}) {
  const rssFile = join(WORK, `rss-${process.pid}.txt`);
  await rm(rssFile, { force: true });
  let runCmd = cmd;
  let runArgs = argv;
  let env = options.env ?? cleanEnv();
  if (TIME) {
    runCmd = TIME;
    runArgs = ['-f', '%M %U %S', '-o', rssFile, '--', cmd, ...argv];
  } else if (cmd === process.execPath) {
    env = { ...env, NODE_OPTIONS: `--require ${RSS_HOOK}`, BENCH_RSS_FILE: rssFile };
  }
  const started = performance.now();
  const r = await exec(runCmd, runArgs, { ...options, env });
  const seconds = (performance.now() - started) / 1000;
  let rssMB;
  let cpuSeconds;
  try {
    const lines = (await readFile(rssFile, 'utf8')).trim().split('\n');
    // "<max RSS KiB> <user s> <system s>"
    const [rss, user, system] = (lines[lines.length - 1] ?? '').split(' ').map(Number);
    rssMB = Number.isFinite(rss) ? rss / 1024 : undefined;
    cpuSeconds = Number.isFinite(user) && Number.isFinite(system) ? user + system : undefined;
  } catch {
    rssMB = undefined;
  }
  return { seconds, rssMB, cpuSeconds, code: r.code, stderr: r.stderr, stdout: r.stdout };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/**
 * Measure a command RUNS times (prepare() before each, untimed) and keep the median wall time and
 * the peak RSS. A non-zero exit aborts the benchmark, unless `allowFailure(result)` says it is n/a.
 */
async function measure(label, { prepare, run, allowFailure, runs = RUNS }) {
  const times = [];
  const cpu = [];
  let rss;
  for (let i = 0; i < runs; i++) {
    if (prepare) await prepare();
    const r = await run();
    if (r.code !== 0) {
      if (allowFailure?.(r)) {
        log(`  ${label}: n/a (${r.stderr.trim().split('\n')[0]})`);
        return { na: true };
      }
      throw new Error(`${label} failed (exit ${r.code}):\n${r.stderr}`);
    }
    times.push(r.seconds);
    if (r.cpuSeconds !== undefined) cpu.push(r.cpuSeconds);
    if (r.rssMB !== undefined) rss = Math.max(rss ?? 0, r.rssMB);
    log(`  ${label}${runs > 1 ? ` ${i + 1}/${runs}` : ''}: ${r.seconds.toFixed(3)} s${r.rssMB !== undefined ? `, ${r.rssMB.toFixed(0)} MB` : ''}`);
  }
  return { seconds: median(times), all: times, rssMB: rss, cpuSeconds: cpu.length ? median(cpu) : undefined };
}

/**
 * Measure several commands side by side: run i of every one before run i + 1 of any. A machine that
 * slows down or speeds up during the bench (other tenants, writeback of earlier runs) then weighs on
 * ours and the baseline alike, and the ratio of medians means what it says. Returns one result per spec.
 */
async function measureSideBySide(specs, runs = RUNS) {
  const acc = specs.map(() => ({ times: [], cpu: [], rss: undefined, na: false }));
  for (let i = 0; i < runs; i++) {
    for (const [k, spec] of specs.entries()) {
      const a = acc[k];
      if (a.na) continue;
      const one = await measure(`${spec.label} ${i + 1}/${runs}`, { ...spec, runs: 1 });
      if (one.na) {
        a.na = true;
        continue;
      }
      a.times.push(one.seconds);
      if (one.cpuSeconds !== undefined) a.cpu.push(one.cpuSeconds);
      if (one.rssMB !== undefined) a.rss = Math.max(a.rss ?? 0, one.rssMB);
    }
  }
  return acc.map((a) => (a.na ? { na: true } : { seconds: median(a.times), all: a.times, rssMB: a.rss, cpuSeconds: a.cpu.length ? median(a.cpu) : undefined }));
}

/** measureSideBySide over named specs: `{ name: spec }` in, `{ name: result }` out. */
async function sideBySide(named, runs = RUNS) {
  const names = Object.keys(named);
  const results = await measureSideBySide(names.map((n) => named[n]), runs);
  return Object.fromEntries(names.map((n, i) => [n, results[i]]));
}

function log(line) {
  process.stderr.write(`${line}\n`);
}

const models = (argv, options) => timed(process.execPath, [CLI, ...argv], options);

// ---------------------------------------------------------------------------------------------
// datasets

/** Deterministic PRNG, so the many-file model has the same shape (and so publish is a no-op) on every run. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** N sizes, each at least 1, summing to total, spread over two orders of magnitude. */
function fileSizes(total, n) {
  const rand = mulberry32(7);
  const weights = Array.from({ length: n }, () => Math.exp(rand() * Math.log(100)));
  const sum = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) => 1 + Math.floor(((total - n) * w) / sum));
  sizes[n - 1] += total - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}


/**
 * The served folder: raw/<kind>/ (the plain files, for the baselines) and reg/<kind>/ (the XPRIM
 * registry `models publish` wrote from them). Rebuilt only when its marker does not match.
 */
async function prepareData(dataDir) {
  const marker = join(dataDir, 'ready.json');
  const want = JSON.stringify({ size: SIZE, files: FILES, chunk: CHUNK, version: 1 });
  const sizes = fileSizes(SIZE, FILES);
  const manyPaths = sizes.map((_, i) => `d${String(Math.floor(i / 100)).padStart(2, '0')}/f${String(i).padStart(4, '0')}.bin`);
  const kinds = {
    single: { files: [{ path: 'model.bin', size: SIZE }], label: '1 file' },
    many: { files: sizes.map((size, i) => ({ path: manyPaths[i], size })), label: `${FILES.toLocaleString('en-US')} files` },
  };
  const ready = existsSync(marker) && (await readFile(marker, 'utf8')) === want;
  if (!ready) {
    log(`building datasets in ${dataDir} (${formatSize(SIZE)} each)`);
    await rm(dataDir, { recursive: true, force: true });
    for (const [kind, { files }] of Object.entries(kinds)) {
      const started = performance.now();
      for (const f of files) await writeRandomFile(join(dataDir, 'www', 'raw', kind, f.path), f.size);
      log(`  wrote raw/${kind} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
  }
  for (const kind of Object.keys(kinds)) {
    const started = performance.now();
    await mustExec(process.execPath, [CLI, 'publish', join(dataDir, 'www', 'raw', kind), '--to', join(dataDir, 'www', 'reg', kind), '--model', `bench/${kind}`, '--version', 'v1', '--chunk-size', CHUNK, '--quiet']);
    if (!ready) log(`  published reg/${kind} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  if (!ready) await writeFile(marker, want);
  return kinds;
}

// ---------------------------------------------------------------------------------------------
// server


async function waitForPort(port, child) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`nginx exited with code ${child.exitCode}`);
    const ok = await new Promise((r) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        r(true);
      });
      socket.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after 10 s`);
}

async function startNginx(nginx, root, dir) {
  const port = await freePort();
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  // Serving from the page cache with sendfile, like a registry host; no logging on the hot path.
  await writeFile(
    conf,
    `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes auto;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx-error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  keepalive_requests 100000;
  default_type application/octet-stream;
  client_body_temp_path ${join(dir, 'tmp')};
  proxy_temp_path ${join(dir, 'tmp')};
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { }
  }
}
`,
  );
  const child = spawn(nginx, ['-p', dir, '-c', conf, '-e', join(dir, 'nginx-error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  try {
    await waitForPort(port, child);
  } catch (error) {
    child.kill('SIGTERM');
    let logText = '';
    try {
      logText = await readFile(join(dir, 'nginx-error.log'), 'utf8');
    } catch {
      // no log
    }
    throw new Error(`${error.message}\n${stderr}${logText}`);
  }
  const version = (await exec(nginx, ['-v'])).stderr.trim().replace(/^nginx version: /, '');
  return {
    url: `http://127.0.0.1:${port}`,
    name: `nginx (${version}, sendfile on)`,
    close: () =>
      new Promise((r) => {
        if (child.exitCode !== null) return r();
        child.on('close', () => r());
        child.kill('SIGQUIT');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

async function startNodeServer(root) {
  // The tests' server is TypeScript that tsc does not emit (tests run from source): esbuild transpiles it.
  const modulePath = join(WORK, 'registry-server.mjs');
  const { build } = await import('esbuild');
  await build({ entryPoints: [join(REPO, 'test', 'support', 'registry-server.ts')], outfile: modulePath, bundle: true, packages: 'external', platform: 'node', format: 'esm', logLevel: 'warning' });
  const { startRegistryServer } = await import(modulePath);
  const server = await startRegistryServer({ root });
  return { url: server.url, name: 'the project\'s node:http registry server (test/support/registry-server.ts, in the bench process)', close: () => server.close() };
}

async function startServer(root) {
  const nginx = args.server === 'node' ? undefined : await which('nginx');
  if (args.server === 'nginx' && !nginx) throw new Error('--server nginx: no nginx binary on PATH (apt-get install nginx-light)');
  if (nginx) return startNginx(nginx, root, join(WORK, 'nginx'));
  return startNodeServer(root);
}

// ---------------------------------------------------------------------------------------------
// machine

async function machine(serverName) {
  const cpu = cpus()[0]?.model ?? 'unknown';
  let fsType = 'unknown';
  try {
    fsType = (await mustExec('df', ['--output=fstype', WORK])).stdout.trim().split('\n').pop();
  } catch {
    // df without --output (busybox, macOS)
  }
  const version = async (cmd, argv) => {
    try {
      const r = await exec(cmd, argv);
      return `${r.stdout}${r.stderr}`.trim().split('\n')[0];
    } catch {
      return undefined;
    }
  };
  const nproc = (await version('nproc', [])) ?? String(cpus().length);
  return {
    nproc,
    cpu,
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: `Linux ${release()}`,
    fsType,
    node: process.version,
    server: serverName,
    curl: (await version('curl', ['--version']))?.split(' ').slice(0, 2).join(' '),
    openssl: await version('openssl', ['version']),
    aria2c: (await which('aria2c')) ? (await version('aria2c', ['--version']))?.replace(/^aria2 version /, 'aria2c ') : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// the benchmark

/** A project whose models.yaml points at the served registry of this kind, locked (untimed). */
async function setupProject(kind, server) {
  const proj = join(WORK, `proj-${kind}`);
  await rm(proj, { recursive: true, force: true });
  await mkdir(proj, { recursive: true });
  await writeFile(join(proj, 'models.yaml'), `version: 1\nregistry: ${server.url}/reg/${kind}\nmodels:\n  m:\n    model: bench/${kind}\n    version: v1\n`);
  await mustExec(process.execPath, [CLI, 'lock', '--quiet'], { cwd: proj, env: cleanEnv({ MODELS_CACHE_DIR: join(WORK, `cache-${kind}`) }) });
  return proj;
}

async function benchModel(kind, info, server, tools) {
  const label = info.label;
  const proj = join(WORK, `proj-${kind}`);
  const cache = join(WORK, `cache-${kind}`);
  const dest = join(proj, 'models');
  const installed = join(dest, 'm');
  const baseDest = join(WORK, `baseline-${kind}`);
  const raw = join(DATA, 'www', 'raw', kind);
  const env = cleanEnv({ MODELS_CACHE_DIR: cache });
  await setupProject(kind, server);

  const urls = info.files.map((f) => ({ url: `${server.url}/raw/${kind}/${f.path}`, path: f.path }));
  const curlCfg = join(WORK, `curl-${kind}.cfg`);
  await writeFile(curlCfg, urls.map((u) => `url = "${u.url}"\noutput = "${u.path}"\n`).join(''));
  const ariaList = join(WORK, `aria2-${kind}.txt`);
  await writeFile(ariaList, urls.map((u) => `${u.url}\n  out=${u.path}\n`).join(''));
  const hashAll = (dir) => `cd ${q(dir)} && find . -type f -print0 | xargs -0 openssl dgst -sha256 > /dev/null`;
  const curlScript =
    kind === 'single'
      ? `mkdir -p ${q(baseDest)} && curl -sS --fail --noproxy '*' -o ${q(join(baseDest, 'model.bin'))} ${q(urls[0].url)} && openssl dgst -sha256 ${q(join(baseDest, 'model.bin'))} > /dev/null`
      : `mkdir -p ${q(baseDest)} && cd ${q(baseDest)} && curl -sS --fail --noproxy '*' --parallel --parallel-max 8 --create-dirs -K ${q(curlCfg)} && ${hashAll(baseDest)}`;
  const aria2Script = `aria2c -q -x8 -s8 -j8 --file-allocation=falloc --allow-overwrite=true --auto-file-renaming=false --no-netrc=true --all-proxy='' -d ${q(baseDest)} -i ${q(ariaList)} && ${hashAll(baseDest)}`;

  const served = [raw, join(DATA, 'www', 'reg', kind)];
  const cleanOurs = async (keepCache = false) => {
    if (!keepCache) await rm(cache, { recursive: true, force: true });
    await rm(dest, { recursive: true, force: true });
    await settle(...served, ...(keepCache ? [cache] : []));
  };
  const cleanBase = async () => {
    await rm(baseDest, { recursive: true, force: true });
    await settle(...served);
  };
  const install = (...extra) => () => models(['install', '--frozen', '--quiet', ...extra], { cwd: proj, env });
  const shell = (script) => () => timed('/bin/sh', ['-c', script]);
  const r = {};

  // The same bytes as a plain `url:` entry (pinned by sha256, no XPRIM registry in between).
  const urlProj = join(WORK, 'proj-url');
  const urlCache = join(WORK, 'cache-url');
  const urlEnv = cleanEnv({ MODELS_CACHE_DIR: urlCache });
  const cleanUrl = async () => {
    await rm(urlCache, { recursive: true, force: true });
    await rm(join(urlProj, 'models'), { recursive: true, force: true });
    await settle(...served);
  };
  if (kind === 'single') {
    await rm(urlProj, { recursive: true, force: true });
    await mkdir(urlProj, { recursive: true });
    await writeFile(join(urlProj, 'models.yaml'), `version: 1\nmodels:\n  m:\n    url: ${urls[0].url}\n`);
    await cleanUrl();
    await mustExec(process.execPath, [CLI, 'lock', '--quiet'], { cwd: urlProj, env: urlEnv });
  }

  log(`\n${label}: cold installs and their baselines, side by side`);
  const coldSpecs = {
    cold: { label: `cold install (${label})`, prepare: () => cleanOurs(), run: install() },
    curl: { label: `curl + openssl (${label})`, prepare: cleanBase, run: shell(curlScript) },
    ...(tools.aria2c ? { aria2: { label: `aria2c -x8 + openssl (${label})`, prepare: cleanBase, run: shell(aria2Script) } } : {}),
    ...(kind === 'single' ? { urlCold: { label: `cold install, url: (${label})`, prepare: cleanUrl, run: () => models(['install', '--frozen', '--quiet'], { cwd: urlProj, env: urlEnv }) } } : {}),
    noCache: { label: `--no-cache cold install (${label})`, prepare: () => cleanOurs(), run: install('--no-cache') },
  };
  Object.assign(r, await sideBySide(coldSpecs));
  if (kind === 'single') await cleanUrl();

  log(`${label}: warm installs and cp -r, side by side`);
  await cleanOurs();
  await mustExec(process.execPath, [CLI, 'install', '--frozen', '--quiet'], { cwd: proj, env });
  Object.assign(
    r,
    await sideBySide({
      warm: { label: `warm install (${label})`, prepare: () => cleanOurs(true), run: install() },
      warmCopy: { label: `warm install --link copy (${label})`, prepare: () => cleanOurs(true), run: install('--link', 'copy') },
      cp: { label: `cp -r (${label})`, prepare: cleanBase, run: () => timed('cp', ['-r', raw, baseDest]) },
    }),
  );

  log(`${label}: no-op install and node -e 0, side by side`);
  await cleanOurs(true);
  await mustExec(process.execPath, [CLI, 'install', '--frozen', '--quiet'], { cwd: proj, env });
  // Sub-second and noisy on a shared machine: more runs, same median.
  Object.assign(
    r,
    await sideBySide(
      {
        noop: { label: `no-op install --frozen (${label})`, run: install() },
        node: { label: 'node -e 0', run: () => timed(process.execPath, ['-e', '0']) },
      },
      Math.max(RUNS, 9),
    ),
  );

  log(`${label}: verify and openssl, side by side`);
  Object.assign(
    r,
    await sideBySide({
      verify: { label: `models verify (${label})`, run: () => models(['verify', '--quiet'], { cwd: proj, env }), allowFailure: (res) => /not implemented/i.test(res.stderr) },
      openssl: { label: `openssl dgst -sha256 (${label})`, run: shell(hashAll(installed)) },
    }),
  );

  if (args.profile) {
    log(`${label}: profiling one cold install (node --cpu-prof)`);
    await cleanOurs();
    const profDir = join(WORK, 'profiles');
    await mkdir(profDir, { recursive: true });
    const name = `cold-${kind}.cpuprofile`;
    await rm(join(profDir, name), { force: true });
    const p = await timed(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-name', name, CLI, 'install', '--frozen', '--quiet'], { cwd: proj, env });
    if (p.code !== 0) throw new Error(`profiled install failed:\n${p.stderr}`);
    r.profile = { path: join(profDir, name), seconds: p.seconds, summary: summariseProfile(JSON.parse(await readFile(join(profDir, name), 'utf8')), 12) };
  }
  // Leave the disk as we found it, but keep the datasets (the slow part) for the next run.
  await cleanOurs();
  await cleanBase();
  return r;
}

/** What the hardware allows on this machine: loopback, one SHA-256 stream, disk writes. */
async function limits(server, info) {
  const url = `${server.url}/raw/single/${info.files[0].path}`;
  const src = join(DATA, 'www', 'raw', 'single', info.files[0].path);
  const out = join(WORK, 'dd-test.bin');
  const clean = async () => {
    await rm(out, { force: true });
    await sh('sync');
  };
  log('\nmachine limits');
  const mbps = (m) => (m.na ? undefined : SIZE / MiB / m.seconds);
  return {
    loopback: mbps(await measure('curl -o /dev/null (loopback)', { run: () => timed('curl', ['-sS', '--fail', '--noproxy', '*', '-o', '/dev/null', url]) })),
    sha256: mbps(await measure('openssl dgst -sha256 (one core, page cache)', { run: () => timed('openssl', ['dgst', '-sha256', src]) })),
    write: mbps(await measure('dd write (no fsync)', { prepare: clean, run: () => timed('dd', [`if=${src}`, `of=${out}`, 'bs=16M', 'status=none']) })),
    writeSync: mbps(await measure('dd write + fdatasync', { prepare: clean, run: () => timed('dd', [`if=${src}`, `of=${out}`, 'bs=16M', 'conv=fdatasync', 'status=none']) })),
  };
}

// ---------------------------------------------------------------------------------------------
// report

const human = (b) => (b >= MiB ? `${(b / MiB).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`);
const fmtS = (m) => (!m || m.na ? 'n/a' : `${m.seconds < 1 ? m.seconds.toFixed(3) : m.seconds.toFixed(2)} s`);
const fmtMB = (x) => (x === undefined ? 'n/a' : `${x.toFixed(0)} MB`);
const ratioOf = (a, b) => (!a || !b || a.na || b.na ? undefined : a.seconds / b.seconds);
const fmtRatio = (x) => (x === undefined ? 'n/a' : `${x.toFixed(2)}×`);
const check = (value, limit) => (value === undefined ? '' : value <= limit ? ' ✓' : ' ✗');

function report(results, infos, lim, machineInfo, started) {
  const rows = [];
  const row = (measurement, ours, base, baseName, target, limit) => {
    const ratio = ratioOf(ours, base);
    rows.push(`| ${measurement} | ${fmtS(ours)} | ${base ? `${fmtS(base)} ${baseName}` : baseName} | ${fmtRatio(ratio)} | ${target}${limit ? check(ratio, limit) : ''} | ${fmtMB(ours?.rssMB)} / ${fmtMB(base?.rssMB)} |`);
  };
  let peak = 0;
  for (const kind of MODEL_KINDS) {
    const r = results[kind];
    const l = `(${infos[kind].label})`;
    // Targets from issue #16: one file ≤ 0.9× (hashing overlaps the download), 2,000 files ≤ 1.1×.
    const coldTarget = kind === 'single' ? 0.9 : 1.1;
    row(`cold install ${l}`, r.cold, r.curl, 'curl + openssl', `≤ ${coldTarget}×`, coldTarget);
    if (r.aria2) row(`cold install ${l}`, r.cold, r.aria2, 'aria2c -x8 + openssl', '—');
    if (r.urlCold) row(`cold install, \`url:\` ${l}`, r.urlCold, r.curl, 'curl + openssl', '≤ 0.9×', 0.9);
    if (r.urlCold && r.aria2) row(`cold install, \`url:\` ${l}`, r.urlCold, r.aria2, 'aria2c -x8 + openssl', '≤ 1.0×', 1.0);
    row(`\`--no-cache\` cold install ${l}`, r.noCache, r.curl, 'curl + openssl', `≤ ${coldTarget}×`, coldTarget);
    if (r.aria2) row(`\`--no-cache\` cold install ${l}`, r.noCache, r.aria2, 'aria2c -x8 + openssl', '—');
    row(`warm install ${l}`, r.warm, r.cp, 'cp -r', '≤ 0.5×', 0.5);
    row(`warm install \`--link copy\` ${l}`, r.warmCopy, r.cp, 'cp -r', '≤ 1.1×', 1.1);
    row(`no-op \`install --frozen\` ${l}`, r.noop, r.node, 'node -e 0', '≤ 2×', 2);
    row(`\`verify\` ${l}`, r.verify, r.openssl, 'openssl dgst -sha256', '≤ 1.0×', 1.0);
    for (const m of [r.cold, r.noCache, r.warm, r.warmCopy, r.noop, r.verify]) if (m?.rssMB) peak = Math.max(peak, m.rssMB);
  }
  if (results.single && results.many) {
    const ours = ratioOf(results.many.cold, results.single.cold);
    const base = ratioOf(results.many.curl, results.single.curl);
    rows.push(`| ${FILES.toLocaleString('en-US')}-file vs 1-file model, cold install time per byte | ${fmtRatio(ours)} | ${fmtRatio(base)} curl + openssl | — | ≤ 2×${check(ours, 2)} | |`);
  }
  rows.push(`| peak RSS, any of our runs above | ${fmtMB(peak || undefined)} | | | ≤ 150 MB${peak ? check(peak, 150) : ''} | |`);
  const table = [
    '| measurement | ours | baseline | ratio | target | peak RSS (ours / baseline) |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  const limitLines = [
    '| machine limit | MB/s |',
    '|---|---|',
    `| loopback HTTP (curl -o /dev/null, ${formatSize(SIZE)}) | ${lim.loopback?.toFixed(0) ?? 'n/a'} |`,
    `| SHA-256, one core (openssl dgst, page cache) | ${lim.sha256?.toFixed(0) ?? 'n/a'} |`,
    `| disk write, no fsync (dd bs=16M) | ${lim.write?.toFixed(0) ?? 'n/a'} |`,
    `| disk write + fdatasync (dd conv=fdatasync) | ${lim.writeSync?.toFixed(0) ?? 'n/a'} |`,
  ].join('\n');
  const m = machineInfo;
  const machineLines = [
    `- ${m.nproc} CPUs (nproc), ${m.cpu}, ${m.memory} RAM, ${m.kernel}`,
    `- work dir file system: ${m.fsType} (${WORK === join(REPO, '.bench') ? '.bench/ in the repo' : WORK})`,
    `- Node.js ${m.node}; ${m.curl}; ${m.openssl}${m.aria2c ? `; ${m.aria2c}` : '; aria2c not installed'}`,
    `- server: ${m.server}, on 127.0.0.1`,
    `- models: ${formatSize(SIZE)} each, published with --chunk-size ${CHUNK}; the many-file model has ${FILES.toLocaleString('en-US')} files of ${human(Math.min(...infos.many.files.map((f) => f.size)))} to ${human(Math.max(...infos.many.files.map((f) => f.size)))} in ${Math.ceil(FILES / 100)} folders`,
    `- each figure is the median of ${RUNS} runs (no-op rows: ${Math.max(RUNS, 9)}); wall clock from spawn to exit; peak RSS from ${TIME ? '`/usr/bin/time -f %M` (largest process of the command, so the max of curl and openssl for a pipeline)' : "node's own maxRSS (no /usr/bin/time; baselines n/a)"}`,
    cachesDropped
      ? '- page cache: before each cold run (untimed) `sync`, then the kernel\'s caches are dropped and the served files, node, the CLI, curl and openssl read back in: "cold" means an empty cache and destination on a machine that deleted nothing lately, not a cold disk (see `settle` in bench/run.mjs for why)'
      : '- page cache: not dropped (needs root); the served files are in RAM, so "cold" means an empty cache and destination, not a cold disk. `sync` runs (untimed) before each run, so no run pays for the previous one\'s writeback',
    `- load average (1 min) at start ${LOAD_AT_START.toFixed(2)}, at end ${loadavg()[0].toFixed(2)}: other work on the machine adds noise`,
    ...(REPORTED_AT_START !== undefined
      ? [`- free page reporting: during the bench the VM handed ${((reportedKiB() - REPORTED_AT_START) / 1048576).toFixed(1)} GiB of freed memory back to its host; writing into such pages faults them back in, so write-heavy rows vary from run to run`]
      : []),
    `- date: ${new Date(started).toISOString().slice(0, 16).replace('T', ' ')} UTC; total bench time ${((Date.now() - started) / 60000).toFixed(1)} min`,
  ].join('\n');
  return { table, limitLines, machineLines };
}

// ---------------------------------------------------------------------------------------------
// main

const DATA = join(WORK, `data-${formatSize(SIZE)}-${FILES}`);
const LOAD_AT_START = loadavg()[0];
/** KiB of freed guest memory the VM has handed back to its host so far (virtio-balloon free page reporting), when the kernel says. */
const reportedKiB = () => {
  try {
    return Number(readFileSync('/sys/module/page_reporting/parameters/reported_kib', 'utf8'));
  } catch {
    return undefined;
  }
};
const REPORTED_AT_START = reportedKiB();

async function main() {
  const started = Date.now();
  await mkdir(WORK, { recursive: true });
  if (!existsSync(join(REPO, 'lib', 'cli', 'index.js'))) throw new Error('lib/ is missing: run `npm run build` (or `npm run bench`)');
  TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
  if (!TIME) {
    log('note: /usr/bin/time not found (apt-get install time): peak RSS of baselines is n/a');
    await writeFile(RSS_HOOK, "process.on('exit', () => { const u = process.resourceUsage(); require('fs').writeFileSync(process.env.BENCH_RSS_FILE, `${u.maxRSS} ${u.userCPUTime / 1e6} ${u.systemCPUTime / 1e6}`); });\n");
  }
  const tools = { aria2c: await which('aria2c') };
  if (!tools.aria2c) log('note: aria2c not found (apt-get install aria2): that baseline is skipped');

  if (MODEL_KINDS.length === 0 && KINDS.includes('oci')) return ociOnly(started);
  if (MODEL_KINDS.length === 0) return templateOnly(started);
  const infos = await prepareData(DATA);
  const server = await startServer(join(DATA, 'www'));
  log(`server: ${server.name} at ${server.url}`);
  const stop = async () => {
    await server.close();
  };
  const onSignal = () => {
    void stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  if (args.serve) {
    for (const kind of MODEL_KINDS) {
      const proj = await setupProject(kind, server);
      log(`${infos[kind].label}: cd ${relative(process.cwd(), proj) || '.'} && MODELS_CACHE_DIR=${join(WORK, `cache-${kind}`)} node ${relative(proj, CLI)} install --frozen`);
    }
    log('serving until Ctrl-C');
    await new Promise(() => undefined);
  }

  const results = {};
  let lim;
  let machineInfo;
  try {
    machineInfo = await machine(server.name);
    lim = await limits(server, infos.single);
    for (const kind of MODEL_KINDS) results[kind] = await benchModel(kind, infos[kind], server, tools);
  } finally {
    await stop();
  }
  const template = KINDS.includes('template') ? `\n${templateFixTable(await benchTemplateFix(templateContext()), SIZE, CHUNK)}\n` : '';
  const oci = KINDS.includes('oci') ? `\n${ociLayerTable(await benchOciLayer(templateContext()), SIZE)}\n` : '';
  const hubRows = KINDS.includes('hub') ? `\n${await hubSection()}\n` : '';

  const { table, limitLines, machineLines } = report(results, infos, lim, machineInfo, started);
  let profileText = '';
  for (const kind of MODEL_KINDS) {
    const p = results[kind].profile;
    if (p) profileText += `\n### Profile: cold install, ${infos[kind].label} (${p.seconds.toFixed(2)} s under --cpu-prof)\n\n\`${relative(REPO, p.path)}\`\n\n${formatSummary(p.summary)}\n`;
  }
  const md = `## Benchmark: ${formatSize(SIZE)} models\n\n${table}\n${template}${oci}${hubRows}\nMachine:\n\n${machineLines}\n\n${limitLines}\n${profileText}`;
  process.stdout.write(`\n${md}`);
  await mkdir(dirname(OUT), { recursive: true });
  await writeFile(OUT, `<!-- written by \`npm run bench\` (bench/run.mjs); do not edit by hand -->\n\n${md}`);
  log(`\nwritten to ${relative(process.cwd(), OUT) || OUT}`);
}

async function hubSection() {
  const r = await benchHub({ repo: REPO, work: WORK, size: SIZE, runs: RUNS, cli: CLI, models, timed, measure, sideBySide, mustExec, cleanEnv, startServer, log, sh, settle });
  return hubTable(r, SIZE, { size: formatSize, s: fmtS, mb: fmtMB });
}

function templateContext() {
  return { work: WORK, size: SIZE, runs: RUNS, chunkSize: CHUNK, cli: CLI, models, measure, sideBySide, mustExec, cleanEnv, startServer, log, sh, settle, timedShell: (script) => timed('/bin/sh', ['-c', script]) };
}

/** `--only template` (or `--only hub`): just that row, written to <dir>/results-template.md (results-hub.md). */
async function templateOnly(started) {
  if (KINDS.includes('hub')) {
    const table = await hubSection();
    const out = args.out ? OUT : join(WORK, 'results-hub.md');
    const md = `## Benchmark: hf: through the stand-in Hub\n\n${table}\n\n- each figure is the median of ${RUNS} runs; load average (1 min) at start ${LOAD_AT_START.toFixed(2)}, at end ${loadavg()[0].toFixed(2)}; ${cpus().length} CPUs; Node.js ${process.version}; the Hub is the test stand-in (node:http, in the bench process); its LFS redirects go to the bench's static server (nginx when installed)\n- date: ${new Date(started).toISOString().slice(0, 16).replace('T', ' ')} UTC; total ${((Date.now() - started) / 60000).toFixed(1)} min\n`;
    process.stdout.write(`\n${md}`);
    await writeFile(out, `<!-- written by \`npm run bench -- --only hub\` (bench/run.mjs); do not edit by hand -->\n\n${md}`);
    log(`\nwritten to ${relative(process.cwd(), out) || out}`);
    return;
  }
  const results = await benchTemplateFix(templateContext());
  const out = args.out ? OUT : join(WORK, 'results-template.md');
  const md = `## Benchmark: template fix\n\n${templateFixTable(results, SIZE, CHUNK)}\n\n- each figure is the median of ${RUNS} runs; load average (1 min) at start ${LOAD_AT_START.toFixed(2)}, at end ${loadavg()[0].toFixed(2)}; ${cpus().length} CPUs; Node.js ${process.version}; server: ${(await which('nginx')) && args.server !== 'node' ? 'nginx' : "the project's node:http registry server"}\n- date: ${new Date(started).toISOString().slice(0, 16).replace('T', ' ')} UTC; total ${((Date.now() - started) / 60000).toFixed(1)} min\n`;
  process.stdout.write(`\n${md}`);
  await writeFile(out, `<!-- written by \`npm run bench -- --only template\` (bench/run.mjs); do not edit by hand -->\n\n${md}`);
  log(`\nwritten to ${relative(process.cwd(), out) || out}`);
}

/** `--only oci`: just the OCI rows, written to <dir>/results-oci.md. */
async function ociOnly(started) {
  const out = args.out ? OUT : join(WORK, 'results-oci.md');
  const md = `## Benchmark: OCI layer\n\n${ociLayerTable(await benchOciLayer(templateContext()), SIZE)}\n\n- each figure is the median of ${RUNS} runs (publish into an empty registry: one run); load average (1 min) at start ${LOAD_AT_START.toFixed(2)}, at end ${loadavg()[0].toFixed(2)}; ${cpus().length} CPUs; Node.js ${process.version}\n- date: ${new Date(started).toISOString().slice(0, 16).replace('T', ' ')} UTC; total ${((Date.now() - started) / 60000).toFixed(1)} min\n`;
  process.stdout.write(`\n${md}`);
  await writeFile(out, `<!-- written by \`npm run bench -- --only oci\` (bench/run.mjs); do not edit by hand -->\n\n${md}`);
  log(`\nwritten to ${relative(process.cwd(), out) || out}`);
}

main().catch((error) => {
  process.stderr.write(`bench: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});
