/**
 * Shared helpers for the robustness tests (faults, resume, concurrency, hostile input, disk,
 * credentials): temp folders, projects, running the real CLI as a child process, checking installed
 * files against the conformance expectations, and snapshots for "nothing written outside the root".
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const PROJECT = join(import.meta.dirname, '..', '..');
export const BIN = join(PROJECT, 'bin', 'models.js');
import { CONFORMANCE } from './cli.js';
export { CONFORMANCE };
export const CONFORMANCE_REGISTRY = join(CONFORMANCE, 'registry');
export const HOSTILE = join(CONFORMANCE, 'hostile');

export interface ExpectedModel {
  manifest: string;
  files: Record<string, { sha256: string; size: number }>;
}
export const EXPECTED = JSON.parse(readFileSync(join(CONFORMANCE, 'expected.json'), 'utf8')) as Record<string, ExpectedModel>;

const temps: string[] = [];

export async function tempDir(prefix = 'xprim-robust-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

export async function cleanTemps(): Promise<void> {
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

export const sha256 = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

export interface ModelSpec {
  model: string;
  version: string;
  path?: string;
  registry?: string;
}

/** Write models.yaml into `dir` and return its path. */
export async function writeProject(dir: string, registry: string, models: Record<string, ModelSpec>, extra: { mirrors?: string[]; root?: string } = {}): Promise<string> {
  const lines = ['version: 1', `registry: ${JSON.stringify(registry)}`];
  if (extra.mirrors) lines.push(`mirrors: [${extra.mirrors.map((m) => JSON.stringify(m)).join(', ')}]`);
  if (extra.root) lines.push(`root: ${JSON.stringify(extra.root)}`);
  lines.push('models:');
  for (const [name, spec] of Object.entries(models)) {
    lines.push(`  ${name}:`, `    model: ${spec.model}`, `    version: ${JSON.stringify(spec.version)}`);
    if (spec.path) lines.push(`    path: ${JSON.stringify(spec.path)}`);
    if (spec.registry) lines.push(`    registry: ${JSON.stringify(spec.registry)}`);
  }
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'models.yaml');
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Environment for a child: no proxy, token or mirror leaking in from the machine, fast retries. */
export function cliEnv(cacheDir: string, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^(MODELS_|https?_proxy$|no_proxy$|all_proxy$)/i.test(key)) delete env[key];
  }
  Object.assign(env, { MODELS_CACHE_DIR: cacheDir, CI: '1', NO_COLOR: '1', MODELS_IDLE_TIMEOUT: '2', MODELS_LOCK_TIMEOUT: '20' });
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function startCli(args: string[], cwd: string, env: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<CliResult> } {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, durationMs: Date.now() - started }));
  });
  return { child, done };
}

export function runCli(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<CliResult> {
  return startCli(args, cwd, env).done;
}

/** Every file under `dir`, relative, with its sha256 (symlinks reported, not followed). */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(rel: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        out.set(`${path}/`, 'dir');
        await walk(path);
      } else if (e.isSymbolicLink()) out.set(path, 'symlink');
      else if (e.isFile()) out.set(path, sha256(await readFile(join(dir, path))));
    }
  }
  await walk('');
  return out;
}

/** Assert-free check: the files of `model@version` under `folder` match expected.json exactly. */
export async function installedMatches(folder: string, key: string): Promise<string[]> {
  const expected = EXPECTED[key];
  if (!expected) return [`no expectation for ${key}`];
  const problems: string[] = [];
  for (const [path, want] of Object.entries(expected.files)) {
    const file = join(folder, path);
    if (!existsSync(file)) {
      problems.push(`${path} missing`);
      continue;
    }
    const data = await readFile(file);
    if (data.length !== want.size || sha256(data) !== want.sha256) problems.push(`${path} differs`);
  }
  const actual = [...(await snapshot(folder)).keys()].filter((p) => !p.endsWith('/'));
  for (const p of actual) if (!(p in expected.files)) problems.push(`${p} unexpected`);
  return problems;
}

/** Deterministic pseudo-random bytes (xorshift): content that does not repeat or dedupe. */
export function randomish(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, Math.min(i, length - 4));
  }
  return out;
}

export async function writeTree(root: string, files: Record<string, Buffer | string>): Promise<void> {
  for (const [path, data] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), data);
  }
}

/** Stdout/stderr must never show a JS stack trace (the CLI prints them only with --verbose). */
export function hasStackTrace(text: string): boolean {
  return /\n\s+at .+\(.+:\d+:\d+\)|\n\s+at file:\/\//.test(text) || /^(TypeError|RangeError|ReferenceError|SyntaxError):/m.test(text);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Problems in a cache folder: a stored file whose bytes do not hash to its name, or a leftover partial download. */
export async function storeProblems(cacheDir: string, allowPartial = false): Promise<string[]> {
  const problems: string[] = [];
  const files = join(cacheDir, 'v1', 'files');
  for (const [path, hash] of await snapshot(files)) {
    if (path.endsWith('/') || path.includes('/.')) continue;
    const name = path.split('/').pop() as string;
    if (hash !== name) problems.push(`v1/files/${path} does not match its hash`);
  }
  if (!allowPartial) {
    const partial = [...(await snapshot(join(cacheDir, 'v1', 'partial'))).keys()];
    if (partial.length > 0) problems.push(`leftover partial downloads: ${partial.join(', ')}`);
  }
  return problems;
}

/**
 * A fresh folder registry holding one pseudo-random file (`size` bytes from `seed`), published by
 * `models publish` as each of `models` with its own fixed chunk size.
 */
export async function registryWithFile(prefix: string, file: string, size: number, seed: number, models: { model: string; chunkSize: number }[]): Promise<{ base: string; registry: string; data: Buffer }> {
  const { publish } = await import('../../src/ops/publish.js');
  const base = await tempDir(prefix);
  const registry = join(base, 'registry');
  const data = randomish(size, seed);
  await writeTree(join(base, 'src'), { [file]: data });
  await mkdir(registry, { recursive: true });
  for (const { model, chunkSize } of models) await publish({ sourceDir: join(base, 'src'), registryDir: registry, model, version: 'v1', chunkSize });
  return { base, registry, data };
}
