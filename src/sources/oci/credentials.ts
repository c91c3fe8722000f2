/**
 * OCI registry credentials as Docker, ORAS, Podman and KitOps read them: `$DOCKER_CONFIG/config.json`
 * (default `~/.docker/config.json`). `auths.<host>`: `auth` (base64 `user:password`), or `username` +
 * `password`, or `identitytoken` (an OAuth2 refresh token for the Bearer realm). `credHelpers.<host>`
 * or `credsStore`: the `docker-credential-<name> get` protocol (the host on stdin, JSON out).
 * Read only when a registry asks for credentials; never logged, never in a message.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ModelsError } from '../../util/errors.js';

export type Credentials = { kind: 'basic'; username: string; password: string } | { kind: 'identity'; token: string; username?: string };

interface AuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
}

interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** The file credentials are read from, for messages: `$DOCKER_CONFIG/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv): string {
  return join(env.DOCKER_CONFIG?.trim() || join(homedir(), '.docker'), 'config.json');
}

/** What to tell a user whose registry refused: where credentials come from and how to add them. */
export function credentialsHint(host: string, env: NodeJS.ProcessEnv): string {
  return `credentials for ${host} are read from ${dockerConfigPath(env)} (DOCKER_CONFIG): run \`docker login ${host}\` (or \`oras login\`), or add auths."${host}".auth (base64 user:password)`;
}

const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** config.json keys a host may be stored under: `host`, `https://host`, `https://host/v1/`… */
function keyMatches(key: string, host: string): boolean {
  const bare = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  if (DOCKER_HUB.has(host)) return DOCKER_HUB.has(bare);
  return bare === host.toLowerCase();
}

function lookup<T>(map: Record<string, T> | undefined, host: string): T | undefined {
  if (!map || typeof map !== 'object') return undefined;
  const key = Object.keys(map).find((k) => keyMatches(k, host));
  return key === undefined ? undefined : map[key];
}

async function readConfig(env: NodeJS.ProcessEnv): Promise<DockerConfigFile | undefined> {
  const file = dockerConfigPath(env);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelsError('E_AUTH', `cannot read ${file}: ${(error as Error).message}`, { hint: 'fix its permissions, or point DOCKER_CONFIG at another folder' });
  }
  try {
    const data = JSON.parse(text) as unknown;
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error('not an object');
    return data as DockerConfigFile;
  } catch {
    throw new ModelsError('E_AUTH', `${file} is not valid JSON`, { hint: 'fix it (`docker login` rewrites it), or point DOCKER_CONFIG at another folder' });
  }
}

function fromEntry(entry: AuthEntry, host: string, file: string): Credentials | undefined {
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') return { kind: 'identity', token: entry.identitytoken };
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new ModelsError('E_AUTH', `${file}: auths."${host}".auth is not base64 of user:password`, { hint: `run \`docker login ${host}\` again` });
    return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof entry.username === 'string' && typeof entry.password === 'string') return { kind: 'basic', username: entry.username, password: entry.password };
  return undefined;
}

/** The credentials for `host`, or undefined when config.json has none (then requests go anonymously). */
export async function credentialsFor(host: string, env: NodeJS.ProcessEnv): Promise<Credentials | undefined> {
  const config = await readConfig(env);
  if (!config) return undefined;
  const file = dockerConfigPath(env);
  const helper = lookup(config.credHelpers, host) ?? (typeof config.credsStore === 'string' && config.credsStore !== '' ? config.credsStore : undefined);
  if (helper) {
    const got = await fromHelper(helper, host, env, file);
    if (got) return got;
  }
  const entry = lookup(config.auths, host);
  return entry && typeof entry === 'object' ? fromEntry(entry, host, file) : undefined;
}

/**
 * `docker-credential-<name> get`: the host on stdin (Docker Hub as `https://index.docker.io/v1/`,
 * the server URL `docker login` stored it under); exit 1 with "credentials not found" means none.
 */
async function fromHelper(name: string, host: string, env: NodeJS.ProcessEnv, file: string): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  if (!/^[\w.-]+$/.test(name)) throw new ModelsError('E_AUTH', `${file}: credential helper "${name}" is not a valid name`, { hint: 'fix credHelpers / credsStore in config.json' });
  const { code, stdout, failure } = await run(program, ['get'], DOCKER_HUB.has(host) ? 'https://index.docker.io/v1/' : host, env);
  if (failure) {
    throw new ModelsError('E_AUTH', `${file} names the credential helper ${program} for ${host}, which cannot be run: ${failure}`, {
      hint: `install ${program} on PATH, or remove credsStore/credHelpers from ${file} and add auths."${host}".auth`,
    });
  }
  if (code !== 0) {
    if (/credentials not found/i.test(stdout)) return undefined;
    throw new ModelsError('E_AUTH', `${program} get ${host} failed (exit ${code})`, { hint: `run \`docker login ${host}\`, or check the helper` });
  }
  let data: { Username?: unknown; Secret?: unknown };
  try {
    data = JSON.parse(stdout) as { Username?: unknown; Secret?: unknown };
  } catch {
    throw new ModelsError('E_AUTH', `${program} get ${host} printed something that is not JSON`, { hint: 'check the credential helper' });
  }
  if (typeof data.Secret !== 'string' || data.Secret === '') return undefined;
  const username = typeof data.Username === 'string' ? data.Username : '';
  // The helpers' convention: a username of "<token>" means the secret is an identity token.
  if (username === '<token>') return { kind: 'identity', token: data.Secret };
  return { kind: 'basic', username, password: data.Secret };
}

function run(program: string, args: string[], input: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; failure?: string }> {
  return new Promise((resolve) => {
    const child = spawn(program, args, { env, stdio: ['pipe', 'pipe', 'ignore'] });
    let stdout = '';
    // A hung helper (waiting on a keychain prompt) must not hang the run; a timer that keeps the process alive must not either.
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    timer.unref();
    const done = (result: { code: number | null; stdout: string; failure?: string }) => {
      clearTimeout(timer);
      resolve(result);
    };
    child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(0, 1 << 20)));
    child.once('error', (error) => done({ code: null, stdout, failure: (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found on PATH' : error.message }));
    child.once('close', (code) => done({ code, stdout }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(`${input}\n`);
  });
}
