/**
 * OCI credentials as every Docker-compatible tool reads them, for tests: a `$DOCKER_CONFIG/config.json`
 * (`auths.<host>.auth` = base64 `user:password`, `identitytoken`, `credHelpers`, `credsStore`) and a
 * fake `docker-credential-<name>` helper speaking the docker-credential-helpers protocol: `get` reads
 * the server URL on stdin and prints `{"ServerURL","Username","Secret"}`, or exits 1 with
 * "credentials not found in native keychain". Every call is appended to a log file.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface DockerConfig {
  auths?: Record<string, { auth?: string; identitytoken?: string; username?: string; password?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export const basicAuth = (user: string, password: string): string => Buffer.from(`${user}:${password}`).toString('base64');

/** Write `<dir>/config.json`; point DOCKER_CONFIG at `dir`. */
export async function writeDockerConfig(dir: string, config: DockerConfig): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'config.json');
  await writeFile(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

export interface FakeHelper {
  /** The folder to put first on PATH. */
  binDir: string;
  /** The calls so far: action and the stdin it got. */
  calls(): Promise<Array<{ action: string; input: string }>>;
}

/** Install `docker-credential-<name>` in `binDir`, answering `get` from `secrets` (server URL or host -> creds). */
export async function fakeCredentialHelper(binDir: string, name: string, secrets: Record<string, { username: string; secret: string }>): Promise<FakeHelper> {
  await mkdir(binDir, { recursive: true });
  const log = join(binDir, `docker-credential-${name}.log`);
  // The logic lives in a .cjs file, so it runs as CommonJS wherever binDir is (even under a "type": "module" package).
  const script = `const fs = require('node:fs');
const secrets = ${JSON.stringify(secrets)};
const action = process.argv[2] ?? '';
const input = fs.readFileSync(0, 'utf8').trim();
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ action, input }) + '\\n');
if (action !== 'get') process.exit(0);
const hit = secrets[input] ?? secrets[input.replace(/^https?:\\/\\//, '').replace(/\\/.*$/, '')];
if (!hit) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
process.stdout.write(JSON.stringify({ ServerURL: input, Username: hit.username, Secret: hit.secret }));
`;
  const impl = join(binDir, `docker-credential-${name}.cjs`);
  await writeFile(impl, script);
  const file = join(binDir, `docker-credential-${name}`);
  await writeFile(file, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(impl)} "$@"\n`);
  await chmod(file, 0o755);
  return {
    binDir,
    async calls() {
      const text = await readFile(log, 'utf8').catch(() => '');
      return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { action: string; input: string });
    },
  };
}
