/**
 * Ctrl-C the way a person presses it: in a real pseudo-terminal (tmux), with the animated progress
 * on. The install must exit 130, release the install-root and download locks, and resume on the next
 * run. Without a terminal, SIGINT must behave the same.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { BIN, cleanTemps, cliEnv, runCli, sha256, sleep, startCli, tempDir, writeProject , registryWithFile } from './support/robustness.js';

const MiB = 1024 * 1024;
let registry: string;
let data: Buffer;
const servers: RegistryServer[] = [];
const sessions: string[] = [];
const TMUX_SOCKET = `xprim-test-${process.pid}`;
// Skipped only outside CI: .ci/run installs tmux, so there a missing tmux fails the test.
const hasTmux = spawnSync('tmux', ['-V']).status === 0 || Boolean(process.env.CI);

function tmux(...args: string[]): string {
  const result = spawnSync('tmux', ['-L', TMUX_SOCKET, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

beforeAll(async () => {
  ({ registry, data } = await registryWithFile('xprim-signals-', 'w.bin', 8 * MiB, 3, [{ model: 'test/w', chunkSize: MiB }]));
});
afterEach(async () => {
  for (const session of sessions.splice(0)) spawnSync('tmux', ['-L', TMUX_SOCKET, 'kill-session', '-t', session]);
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  spawnSync('tmux', ['-L', TMUX_SOCKET, 'kill-server']);
  await cleanTemps();
});

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Lock folders left anywhere under the project (install root and cache). */
async function leftoverLocks(dir: string): Promise<string[]> {
  const found: string[] = [];
  async function walk(path: string): Promise<void> {
    for (const entry of await readdir(path, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory()) continue;
      const child = join(path, entry.name);
      if (entry.name.endsWith('.lock')) found.push(child);
      else await walk(child);
    }
  }
  await walk(dir);
  return found;
}

async function slowProject() {
  const server = await startRegistryServer({ root: registry, bytesPerSecond: 1 * MiB });
  servers.push(server);
  const dir = await tempDir();
  await writeProject(dir, server.url, { w: { model: 'test/w', version: 'v1' } });
  return { server, dir, env: cliEnv(join(dir, 'cache')) };
}

const chunkStarted = (server: RegistryServer) => () => server.requests.some((r) => r.path.startsWith('/data/') && r.status === 200) || false;

/** Run `models install` in a tmux pane (a real pty, no CI variable: the listr2 progress is on). */
async function installInTerminal(dir: string, env: NodeJS.ProcessEnv): Promise<{ session: string; exitFile: string }> {
  const session = `s${sessions.length}-${Date.now()}`;
  sessions.push(session);
  const exitFile = join(dir, 'exit-code');
  const script = join(dir, 'run.sh');
  const exports = Object.entries(env)
    .filter(([k]) => k.startsWith('MODELS_'))
    .map(([k, v]) => `export ${k}=${JSON.stringify(v)}`);
  await writeFile(script, ['unset CI NO_COLOR', ...exports, `cd ${JSON.stringify(dir)}`, `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} install`, `echo $? > ${JSON.stringify(exitFile)}`, 'sleep 600', ''].join('\n'));
  tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '20', `bash ${JSON.stringify(script)}`);
  return { session, exitFile };
}

describe.runIf(hasTmux)('Ctrl-C in a real terminal (tmux)', () => {
  it('exits 130, releases every lock, and the next run resumes', async () => {
    const { server, dir, env } = await slowProject();
    const { session, exitFile } = await installInTerminal(dir, env);
    await waitFor(chunkStarted(server), 20_000, 'a chunk download');
    await waitFor(() => tmux('capture-pane', '-p', '-t', session).includes('/s ETA'), 10_000, 'the progress line');
    tmux('send-keys', '-t', session, 'C-c');
    await waitFor(() => existsSync(exitFile), 10_000, 'the install to exit');
    const screen = tmux('capture-pane', '-p', '-t', session);

    expect((await readFile(exitFile, 'utf8')).trim(), screen).toBe('130');
    expect(screen).toContain('interrupted');
    expect(await leftoverLocks(dir)).toEqual([]);
    const again = await runCli(['install'], dir, env);
    expect(again.code, again.stderr).toBe(0);
    expect(sha256(await readFile(join(dir, 'models', 'w', 'w.bin')))).toBe(sha256(data));
  });
});

describe('SIGINT without a terminal', () => {
  it('exits 130 and releases every lock', async () => {
    const { server, dir, env } = await slowProject();
    const { child, done } = startCli(['install'], dir, env);
    await waitFor(chunkStarted(server), 20_000, 'a chunk download');
    child.kill('SIGINT');
    const result = await done;
    expect(result.code, result.stderr).toBe(130);
    expect(await leftoverLocks(dir)).toEqual([]);
  });

  it('a second SIGINT exits 130 at once and still releases every lock', async () => {
    const { server, dir, env } = await slowProject();
    const { child, done } = startCli(['install'], dir, env);
    await waitFor(chunkStarted(server), 20_000, 'a chunk download');
    child.kill('SIGINT');
    child.kill('SIGINT');
    const result = await done;
    expect(result.code, result.stderr).toBe(130);
    expect(await leftoverLocks(dir)).toEqual([]);
  });
});
