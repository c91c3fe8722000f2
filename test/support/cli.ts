/** Run the real CLI as a child process, and small project fixtures, for end-to-end tests. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const BIN = join(REPO, 'bin', 'models.js');
/**
 * The conformance registry: the repository's own copy (`test/fixtures/conformance`, so that a clone
 * without `../shared` tests everything), or $XPRIM_CONFORMANCE_DIR. `test/fixtures.test.ts` checks the
 * copy against `../shared/conformance` whenever that is beside the repo.
 */
export const CONFORMANCE = process.env.XPRIM_CONFORMANCE_DIR ? resolve(process.env.XPRIM_CONFORMANCE_DIR) : join(REPO, 'test', 'fixtures', 'conformance');
/** The shared folder beside the repository (as laid out for CI here); absent on a plain GitHub clone. */
export const SHARED = resolve(REPO, '..', 'shared');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, CI: 'true', NO_COLOR: '1', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

export async function tempDir(prefix = 'xprim-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A project folder with this models.yaml and its own cache dir. */
export async function makeProject(yaml: string): Promise<{ dir: string; cache: string; env: NodeJS.ProcessEnv }> {
  const dir = await tempDir();
  await writeFile(join(dir, 'models.yaml'), yaml);
  const cache = join(dir, '.cache');
  return { dir, cache, env: { MODELS_CACHE_DIR: cache } };
}

export interface ExpectedModel {
  manifest: string;
  files: Record<string, { sha256: string; size: number }>;
}
export const EXPECTED = JSON.parse(readFileSync(join(CONFORMANCE, 'expected.json'), 'utf8')) as Record<string, ExpectedModel>;

export function sha256Of(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Every expected file of `key` (group/model@version) is byte-exact under `dir`. Returns the mismatches. */
export function mismatches(dir: string, key: string): string[] {
  const bad: string[] = [];
  for (const [path, file] of Object.entries((EXPECTED[key] as ExpectedModel).files)) {
    try {
      if (sha256Of(join(dir, path)) !== file.sha256) bad.push(path);
    } catch {
      bad.push(`${path} (missing)`);
    }
  }
  return bad;
}

/** A project as `makeProject`, remembered in `temps` for cleanup, with a `cli(...args)` bound to it. */
export async function cliProject(yaml: string, temps: string[]) {
  const p = await makeProject(yaml);
  temps.push(p.dir);
  const cli = (...args: string[]) => runCli(args, { cwd: p.dir, env: p.env });
  return { ...p, cli };
}

/** A models.yaml with one registry and these models. */
export function yamlFor(registry: string, models: Record<string, { model: string; version: string }>): string {
  const lines = ['version: 1', `registry: ${registry}`, 'models:'];
  for (const [name, m] of Object.entries(models)) lines.push(`  ${name}:`, `    model: ${m.model}`, `    version: ${m.version}`);
  return `${lines.join('\n')}\n`;
}

/** Flip one byte in place, keeping the size and the mtime: only a re-hash can tell. */
export async function flipByte(path: string, at: number): Promise<void> {
  const { chmod, open, stat, utimes } = await import('node:fs/promises');
  const before = await stat(path);
  await chmod(path, 0o644); // installed files are read-only hardlinks
  const handle = await open(path, 'r+');
  try {
    const buf = Buffer.alloc(1);
    await handle.read(buf, 0, 1, at);
    buf[0] = (buf[0] as number) ^ 0xff;
    await handle.write(buf, 0, 1, at);
  } finally {
    await handle.close();
  }
  await utimes(path, before.atimeMs / 1000, before.mtimeMs / 1000);
}

/** Deterministic bytes that do not repeat (xorshift), so no two chunks of a test model share a hash. */
export function bytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
