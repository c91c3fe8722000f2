/**
 * A REAL OCI registry for tests: Debian's `docker-registry` package (distribution 2.8), started on a
 * free 127.0.0.1 port with a temporary config and filesystem storage in a temp folder. Never its
 * default /etc/docker/registry/config.yml, which listens on every interface.
 *
 * Auth modes: none; `htpasswd` (bcrypt file made by `htpasswd -Bbc`, as the registry requires);
 * `token` (the Docker token flow against test/support/oci-token-server.ts).
 *
 * CI must have the binary (.ci/run installs `docker-registry apache2-utils`); elsewhere, tests skip
 * with `registrySkipReason()` when it is missing.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TokenServer } from './oci-token-server.js';

export type RegistryAuth =
  | { kind: 'none' }
  | { kind: 'htpasswd'; users: Record<string, string> }
  | { kind: 'token'; tokenServer: TokenServer };

export interface OciRegistry {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT, as it appears in references and in ~/.docker/config.json `auths`. */
  host: string;
  /** The registry's storage folder (blobs under docker/registry/v2/blobs/sha256/<aa>/<hex>/data). */
  storage: string;
  /** The registry's stderr so far (its log; level warn). */
  log(): string;
  /** Kill the registry and remove its temp folder. */
  close(): Promise<void>;
}

const BINARIES = ['docker-registry', 'registry'];

/** The registry binary on PATH, or undefined. */
export function findRegistryBinary(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of BINARIES) if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/**
 * Why registry tests cannot run here, or undefined when they can. In CI a missing binary is an
 * error, not a skip: the suite must not silently lose its registry tests.
 */
export function registrySkipReason(): string | undefined {
  const missing = [findRegistryBinary() ? undefined : 'docker-registry', hasHtpasswd() ? undefined : 'htpasswd'].filter((x) => x !== undefined);
  if (missing.length === 0) return undefined;
  const msg = `${missing.join(' and ')} not found on PATH: install with \`apt-get install -y docker-registry apache2-utils\``;
  if (process.env.CI) throw new Error(`CI needs a real OCI registry: ${msg}`);
  return `skipping real-registry tests: ${msg}`;
}

function hasHtpasswd(): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, 'htpasswd')));
}

const running = new Set<ChildProcess>();
// A test runner that dies mid-suite must not leave registries behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startOciRegistry(options: { auth?: RegistryAuth } = {}): Promise<OciRegistry> {
  const bin = findRegistryBinary();
  if (!bin) throw new Error('docker-registry not found on PATH (apt-get install -y docker-registry)');
  const dir = await mkdtemp(join(tmpdir(), 'oci-registry-'));
  const storage = join(dir, 'storage');
  await mkdir(storage);
  const auth = options.auth ?? { kind: 'none' };
  // The port is free when probed; another process could take it before the registry binds, so retry.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const config = join(dir, 'config.yml');
    await writeFile(config, await configYaml(dir, storage, port, auth));
    try {
      return await launch(bin, config, dir, storage, port);
    } catch (e) {
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }
}

async function configYaml(dir: string, storage: string, port: number, auth: RegistryAuth): Promise<string> {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(storage)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    // A fixed secret silences the "no secret" warning; uploads do not outlive one registry.
    '  secret: xprim-models-test-secret',
  ];
  if (auth.kind === 'htpasswd') {
    const file = join(dir, 'htpasswd');
    Object.entries(auth.users).forEach(([user, password], i) => {
      // -B: bcrypt, the only hash distribution accepts; -c creates the file for the first user.
      execFileSync('htpasswd', [i === 0 ? '-Bbc' : '-Bb', file, user, password], { stdio: 'ignore' });
    });
    lines.push('auth:', '  htpasswd:', '    realm: test-registry', `    path: ${JSON.stringify(file)}`);
  }
  if (auth.kind === 'token') {
    const t = auth.tokenServer;
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${JSON.stringify(t.realm)}`,
      `    service: ${JSON.stringify(t.service)}`,
      `    issuer: ${JSON.stringify(t.issuer)}`,
      `    rootcertbundle: ${JSON.stringify(t.certFile)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function launch(bin: string, config: string, dir: string, storage: string, port: number): Promise<OciRegistry> {
  const child = spawn(bin, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-64_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${log.trim().slice(-2000)}`);
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      // 200 without auth, 401 with it: either way the API is up.
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer ${url}/v2/ within 15 s: ${log.trim().slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    storage,
    log: () => log,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
