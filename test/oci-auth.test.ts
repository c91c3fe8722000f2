/**
 * `oci:` credentials end to end against the real registry: htpasswd (Basic), the Bearer-token flow
 * (a token server signing JWTs the registry verifies), credential helpers, a blob redirect to a
 * second origin. Credentials must never show in output, --verbose logs or the lock, and never reach
 * an origin they are not for.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, fakeCredentialHelper, writeDockerConfig } from './support/docker-config.js';
import { startBlobRedirect } from './support/oci-blob-redirect.js';
import { orasFixture, pushFixture } from './support/oci-fixtures.js';
import { OciTestClient } from './support/oci-push.js';
import { type OciRegistry, registrySkipReason, startOciRegistry } from './support/oci-registry.js';
import { startRequestLog } from './support/oci-request-log.js';
import { startTokenServer, type TokenServer } from './support/oci-token-server.js';
import { cleanTemps, cliEnv, runCli, sha256, sleep, tempDir } from './support/robustness.js';
import { Session } from '../src/project/session.js';
import { fetchManifest } from '../src/sources/oci/manifest-fetch.js';
import { parseReference } from '../src/sources/oci/reference.js';

const skip = registrySkipReason();
afterAll(cleanTemps);

async function project(reference: string): Promise<{ dir: string; cache: string; base: string }> {
  const base = await tempDir('xprim-oci-auth-');
  const dir = join(base, 'project');
  await mkdir(dir);
  await writeFile(join(dir, 'models.yaml'), `version: 1\nmodels:\n  m:\n    oci: ${reference}\n`);
  return { dir, cache: join(base, 'cache'), base };
}

/** Nothing secret in what the run printed or wrote. */
async function expectNoSecret(dir: string, outputs: string[], secrets: string[]): Promise<void> {
  const lock = await readFile(join(dir, 'models.lock'), 'utf8').catch(() => '');
  for (const secret of secrets) {
    for (const text of [...outputs, lock]) expect(text.includes(secret), `leaked ${secret}`).toBe(false);
  }
}

// Three independent tests (own projects, no shared counts): side by side.
describe.skipIf(skip !== undefined).concurrent('oci: Basic auth (htpasswd)', () => {
  let reg: OciRegistry;
  const password = 's3cret-Pa55';
  beforeAll(async () => {
    reg = await startOciRegistry({ auth: { kind: 'htpasswd', users: { alice: password } } });
  });
  afterAll(async () => reg?.close());

  it('installs with auths.<host>.auth; no or wrong credentials exit 9 naming DOCKER_CONFIG; nothing leaks', async () => {
    const f = orasFixture([{ path: 'w.bin', content: randomBytes(80_000) }]);
    await pushFixture(new OciTestClient(reg.url, { username: 'alice', password }), 'acme/private', 'v1', f);
    const { dir, cache, base } = await project(`${reg.host}/acme/private:v1`);
    const docker = join(base, 'docker');
    await writeDockerConfig(docker, { auths: { [reg.host]: { auth: basicAuth('alice', password) } } });
    const ok = await runCli(['install', '--verbose'], dir, cliEnv(cache, { DOCKER_CONFIG: docker }));
    expect(ok.code, ok.stderr).toBe(0);
    expect(sha256(await readFile(join(dir, 'models', 'm', 'w.bin')))).toBe(sha256(f.files['w.bin'] as Buffer));
    await expectNoSecret(dir, [ok.stdout, ok.stderr], [password, basicAuth('alice', password)]);

    // No and wrong credentials: two projects, side by side (a missing helper: oci-units).
    const [none, wrongP] = await Promise.all([1, 2].map(() => project(`${reg.host}/acme/private:v1`)));
    if (!none || !wrongP) throw new Error('projects missing');
    const wrong = join(wrongP.base, 'wrong');
    await writeDockerConfig(wrong, { auths: { [`https://${reg.host}`]: { username: 'alice', password: 'nope' } } });
    const [refused, bad] = await Promise.all([
      runCli(['install'], none.dir, cliEnv(none.cache, { DOCKER_CONFIG: join(none.base, 'empty') })),
      runCli(['install', '--verbose'], wrongP.dir, cliEnv(wrongP.cache, { DOCKER_CONFIG: wrong })),
    ]);
    expect(refused.code, refused.stderr).toBe(9);
    expect(refused.stderr).toContain('DOCKER_CONFIG');
    expect(refused.stderr).toContain(reg.host);
    expect(bad.code, bad.stderr).toBe(9);
    expect(bad.stderr).toContain('HTTP 401');
    await expectNoSecret(wrongP.dir, [bad.stdout, bad.stderr], ['nope', basicAuth('alice', 'nope')]);
  });

  it('credHelpers: the docker-credential-<name> get protocol supplies the credentials', async () => {
    const f = orasFixture([{ path: 'h.bin', content: randomBytes(5000) }]);
    await pushFixture(new OciTestClient(reg.url, { username: 'alice', password }), 'acme/helper', 'v1', f);
    const { dir, cache, base } = await project(`${reg.host}/acme/helper:v1`);
    const helper = await fakeCredentialHelper(join(base, 'bin'), 'xtest', { [reg.host]: { username: 'alice', secret: password } });
    const docker = join(base, 'docker');
    await writeDockerConfig(docker, { credHelpers: { [reg.host]: 'xtest' } });
    const result = await runCli(['install', '--verbose'], dir, cliEnv(cache, { DOCKER_CONFIG: docker, PATH: `${helper.binDir}:${process.env.PATH ?? ''}` }));
    expect(result.code, result.stderr).toBe(0);
    expect(await helper.calls()).toEqual([{ action: 'get', input: reg.host }]);
    await expectNoSecret(dir, [result.stdout, result.stderr], [password]);
  });

  it('a blob redirect to a second origin gets no credentials', async () => {
    const front = await startBlobRedirect(reg);
    try {
      const f = orasFixture([{ path: 'big.bin', content: randomBytes(400_000) }, { path: 'small.txt', content: 'hello' }]);
      await pushFixture(new OciTestClient(front.url, { username: 'alice', password }), 'acme/cdn', 'v1', f);
      const { dir, cache, base } = await project(`${front.host}/acme/cdn:v1`);
      const docker = join(base, 'docker');
      await writeDockerConfig(docker, { auths: { [front.host]: { auth: basicAuth('alice', password) } } });
      const result = await runCli(['install'], dir, cliEnv(cache, { DOCKER_CONFIG: docker }));
      expect(result.code, result.stderr).toBe(0);
      expect(sha256(await readFile(join(dir, 'models', 'm', 'big.bin')))).toBe(sha256(f.files['big.bin'] as Buffer));
      await front.blobHost.settled();
      expect(front.redirected.length).toBe(2);
      expect(front.blobHost.requests.length).toBeGreaterThanOrEqual(2);
      expect(front.blobHost.requests.map((r) => r.authorization)).toEqual(front.blobHost.requests.map(() => undefined));
    } finally {
      await front.close();
    }
  });
});

describe.skipIf(skip !== undefined)('oci: Bearer tokens (auth: token)', () => {
  let reg: OciRegistry;
  let tokens: TokenServer;
  beforeAll(async () => {
    tokens = await startTokenServer({
      users: { ci: { password: 'pw-ci', grants: [{ repository: '*', actions: ['pull', 'push'] }] }, reader: { password: 'pw-reader', grants: [{ repository: 'acme/*', actions: ['pull'] }] } },
      anonymous: [{ repository: 'public/*', actions: ['pull'] }],
      expiresIn: 60,
    });
    reg = await startOciRegistry({ auth: { kind: 'token', tokenServer: tokens } });
  });
  afterAll(async () => {
    await reg?.close();
    await tokens?.close();
  });

  it('gets a token from the realm with the credentials (the registry never sees them); anonymous where allowed; wrong credentials exit 9', async () => {
    const pusher = new OciTestClient(reg.url, { username: 'ci', password: 'pw-ci' });
    const f = orasFixture([{ path: 'a.bin', content: randomBytes(60_000) }, { path: 'b.txt', content: 'b' }]);
    await pushFixture(pusher, 'acme/tok', 'v1', f);
    await pushFixture(pusher, 'public/open', 'v1', f);
    const front = await startRequestLog(reg.url);
    try {
      const { dir, cache, base } = await project(`${front.host}/acme/tok:v1`);
      const docker = join(base, 'docker');
      await writeDockerConfig(docker, { auths: { [front.host]: { auth: basicAuth('reader', 'pw-reader') } } });
      tokens.requests.length = 0;
      const ok = await runCli(['install', '--verbose'], dir, cliEnv(cache, { DOCKER_CONFIG: docker }));
      expect(ok.code, ok.stderr).toBe(0);
      expect(sha256(await readFile(join(dir, 'models', 'm', 'a.bin')))).toBe(sha256(f.files['a.bin'] as Buffer));
      expect(tokens.requests.length).toBeGreaterThanOrEqual(1);
      expect(tokens.requests.every((r) => r.user === 'reader' && r.scopes.includes('repository:acme/tok:pull'))).toBe(true);
      // One token per scope, cached: not one per request.
      expect(tokens.requests.length).toBeLessThanOrEqual(2);
      expect(front.requests.some((r) => r.authorization?.startsWith('Bearer '))).toBe(true);
      expect(front.requests.every((r) => !r.authorization?.startsWith('Basic '))).toBe(true);
      await expectNoSecret(dir, [ok.stdout, ok.stderr], ['pw-reader', basicAuth('reader', 'pw-reader')]);

      // Anonymous where allowed, no and wrong credentials refused: three projects, side by side.
      const [anon, closed, wrongP] = await Promise.all([`${front.host}/public/open:v1`, `${front.host}/acme/tok:v1`, `${front.host}/acme/tok:v1`].map((r) => project(r)));
      if (!anon || !closed || !wrongP) throw new Error('projects missing');
      const wrong = join(wrongP.base, 'wrong');
      await writeDockerConfig(wrong, { auths: { [front.host]: { auth: basicAuth('reader', 'bad') } } });
      const [open, denied, bad] = await Promise.all([
        runCli(['install'], anon.dir, cliEnv(anon.cache, { DOCKER_CONFIG: join(anon.base, 'none') })),
        runCli(['install'], closed.dir, cliEnv(closed.cache, { DOCKER_CONFIG: join(closed.base, 'none') })),
        runCli(['install'], wrongP.dir, cliEnv(wrongP.cache, { DOCKER_CONFIG: wrong })),
      ]);
      expect(open.code, open.stderr).toBe(0);
      expect(denied.code, denied.stderr).toBe(9);
      expect(denied.stderr).toContain('DOCKER_CONFIG');
      expect(bad.code, bad.stderr).toBe(9);
      await expectNoSecret(wrongP.dir, [bad.stdout, bad.stderr], ['pw-reader', basicAuth('reader', 'bad')]);
    } finally {
      await front.close();
    }
  });

  it('renews a token whose expires_in has passed before the registry refuses it; a cached token refused as invalid is replaced once, never in a loop', async () => {
    const pusher = new OciTestClient(reg.url, { username: 'ci', password: 'pw-ci' });
    const f = orasFixture([{ path: 'r.bin', content: 'r' }]);
    await pushFixture(pusher, 'acme/renew', 'v1', f);
    await pushFixture(pusher, 'acme/renew2', 'v1', f);
    await pushFixture(pusher, 'acme/renew3', 'v1', f);
    const front = await startRequestLog(reg.url);
    const base = await tempDir('xprim-oci-renew-');
    const docker = join(base, 'docker');
    await writeDockerConfig(docker, { auths: { [front.host]: { auth: basicAuth('reader', 'pw-reader') } } });
    const session = new Session(undefined, { cacheDir: join(base, 'cache'), env: { ...process.env, DOCKER_CONFIG: docker } });
    const manifest = (repo: string) => fetchManifest(session, parseReference(`${front.host}/${repo}:v1`), 'v1');
    const statuses = () => front.requests.splice(0).map((r) => r.status);
    try {
      tokens.expiresIn = 1;
      tokens.requests.length = 0;
      await manifest('acme/renew');
      expect([tokens.requests.length, statuses()]).toEqual([1, [401, 200]]);
      // Past its renewal time (3/4 of a 1 s lifetime): a new token goes with the request, no 401 first.
      await sleep(800);
      tokens.expiresIn = 300;
      await manifest('acme/renew');
      expect([tokens.requests.length, statuses()]).toEqual([2, [200]]);
      // A token not yet due but dead to the registry (revoked): refused as invalid, replaced once, then the request succeeds.
      tokens.expireNext = 1;
      await manifest('acme/renew2');
      expect([tokens.requests.length, statuses()]).toEqual([4, [401, 200]]);
      await manifest('acme/renew2');
      expect([tokens.requests.length, statuses()]).toEqual([4, [200]]);
      // Every token refused: a replacement is tried once, then exit 9; never a loop of token requests.
      tokens.expireNext = 10;
      await expect(manifest('acme/renew3')).rejects.toMatchObject({ code: 'E_AUTH' });
      expect([tokens.requests.length, statuses()]).toEqual([6, [401, 401]]);
    } finally {
      tokens.expireNext = 0;
      tokens.expiresIn = 60;
      await session.close();
      await front.close();
    }
  });
});
