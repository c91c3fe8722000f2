/**
 * The real OCI registry harness (Debian's docker-registry, distribution 2.8) and the fixtures the
 * oci: tests push into it, checked with plain fetch: what the registry really answers, quirks included.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, fakeCredentialHelper, writeDockerConfig } from './support/docker-config.js';
import { startBlobRedirect } from './support/oci-blob-redirect.js';
import { indexFixture, kitopsFixture, MANIFEST_ACCEPT, modelPackFixture, OCI, type OciFixture, ollamaFixture, orasFixture, pushFixture } from './support/oci-fixtures.js';
import { digestOf, OciTestClient, parseChallenge } from './support/oci-push.js';
import { type OciRegistry, registrySkipReason, startOciRegistry } from './support/oci-registry.js';
import { startTokenServer, type TokenServer } from './support/oci-token-server.js';

const skip = registrySkipReason();
if (skip) console.warn(skip);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'harness-oci-'));
});
afterAll(async () => rm(tmp, { recursive: true, force: true }));

/** Unpack a tar (gzip or not) with the system's GNU tar: proves the fixture is a real archive. */
async function untar(blob: Buffer, gzip: boolean): Promise<Record<string, Buffer>> {
  const dir = await mkdtemp(join(tmp, 'untar-'));
  const file = join(dir, 'layer.tar');
  await writeFile(file, blob);
  const names = execFileSync('tar', [gzip ? '-tzf' : '-tf', file], { encoding: 'utf8' }).split('\n').filter((n) => n !== '' && !n.endsWith('/'));
  execFileSync('tar', [gzip ? '-xzf' : '-xf', file, '-C', dir]);
  const out: Record<string, Buffer> = {};
  for (const n of names) out[n] = await readFile(join(dir, n));
  return out;
}

describe('registry availability', () => {
  it('skips with a clear message without the binary, but fails in CI', () => {
    const saved = { PATH: process.env.PATH, CI: process.env.CI };
    try {
      process.env.PATH = '/nonexistent';
      delete process.env.CI;
      expect(registrySkipReason()).toMatch(/docker-registry and htpasswd not found on PATH: install with `apt-get install -y docker-registry apache2-utils`/);
      process.env.CI = 'true';
      expect(() => registrySkipReason()).toThrow(/CI needs a real OCI registry/);
    } finally {
      process.env.PATH = saved.PATH;
      if (saved.CI === undefined) delete process.env.CI;
      else process.env.CI = saved.CI;
    }
  });
});

describe('docker credentials fixtures', () => {
  it('a fake docker-credential helper answers `get` per the protocol and logs its calls', async () => {
    const helper = await fakeCredentialHelper(join(tmp, 'bin'), 'xtest', { '127.0.0.1:5000': { username: 'u', secret: 's' } });
    const out = execFileSync(join(helper.binDir, 'docker-credential-xtest'), ['get'], { input: '127.0.0.1:5000\n', encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ ServerURL: '127.0.0.1:5000', Username: 'u', Secret: 's' });
    const miss = spawnSync(join(helper.binDir, 'docker-credential-xtest'), ['get'], { input: 'other.example', encoding: 'utf8' });
    expect([miss.status, miss.stdout]).toEqual([1, 'credentials not found in native keychain\n']);
    expect(await helper.calls()).toEqual([{ action: 'get', input: '127.0.0.1:5000' }, { action: 'get', input: 'other.example' }]);
    const file = await writeDockerConfig(join(tmp, 'docker'), { auths: { 'h:1': { auth: basicAuth('a', 'b') } }, credHelpers: { 'h:2': 'xtest' } });
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ auths: { 'h:1': { auth: 'YTpi' } }, credHelpers: { 'h:2': 'xtest' } });
  });
});

describe.skipIf(skip !== undefined)('real registry, no auth', () => {
  let reg: OciRegistry;
  let client: OciTestClient;
  beforeAll(async () => {
    reg = await startOciRegistry();
    client = new OciTestClient(reg.url);
  });
  afterAll(async () => reg?.close());

  it('listens only on 127.0.0.1 and answers /v2/ with the distribution API header', async () => {
    expect(reg.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${reg.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('uploads: Range without bytes=, a new Location per PATCH, the old one refused, no single-request upload', async () => {
    const start = await fetch(`${reg.url}/v2/quirks/a/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    expect(start.headers.get('range')).toBe('0-0');
    const first = start.headers.get('location') ?? '';
    const patch = await fetch(first, { method: 'PATCH', body: Buffer.from('hello'), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-4' } });
    expect(patch.status).toBe(202);
    expect(patch.headers.get('range')).toBe('0-4');
    const second = patch.headers.get('location') ?? '';
    expect(second).not.toBe(first);
    const stale = await fetch(first, { method: 'PATCH', body: Buffer.from(' world'), headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '5-10' } });
    expect(stale.status).toBe(404);
    expect(await stale.json()).toMatchObject({ errors: [{ code: 'BLOB_UPLOAD_INVALID' }] });

    const body = Buffer.from('one shot');
    const mono = await fetch(`${reg.url}/v2/quirks/a/blobs/uploads/?digest=${digestOf(body)}`, { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream' } });
    expect(mono.status).toBe(202); // an upload session, not 201: the body was ignored
    expect((await fetch(`${reg.url}/v2/quirks/a/blobs/${digestOf(body)}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('serves an OCI manifest only with the OCI Accept type (404 without it, even */*)', async () => {
    const f = orasFixture([{ path: 'a.bin', content: randomBytes(1000) }]);
    const digest = await pushFixture(client, 'acme/accept', 'v1', f);
    expect(digest).toBe(digestOf(f.manifest));
    for (const accept of [undefined, '*/*', OCI.dockerManifest]) {
      const res = await fetch(`${reg.url}/v2/acme/accept/manifests/v1`, accept ? { headers: { Accept: accept } } : {});
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ errors: [{ code: 'MANIFEST_UNKNOWN' }] });
    }
    const ok = await fetch(`${reg.url}/v2/acme/accept/manifests/v1`, { headers: { Accept: MANIFEST_ACCEPT.join(', ') } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe(OCI.manifest);
    expect(ok.headers.get('docker-content-digest')).toBe(digest);
    expect(Buffer.from(await ok.arrayBuffer()).equals(f.manifest)).toBe(true);
    const byDigest = await fetch(`${reg.url}/v2/acme/accept/manifests/${digest}`, { headers: { Accept: OCI.manifest } });
    expect(byDigest.status).toBe(200);
  });

  it('blobs: ETag is the quoted digest; Range gives 206; If-Range with another ETag gives the whole blob', async () => {
    const blob = randomBytes(50_000);
    const digest = await client.pushBlob('acme/range', blob, 16_384);
    const full = await fetch(`${reg.url}/v2/acme/range/blobs/${digest}`);
    expect(full.headers.get('etag')).toBe(`"${digest}"`);
    expect(full.headers.get('docker-content-digest')).toBe(digest);
    expect(Buffer.from(await full.arrayBuffer()).equals(blob)).toBe(true);
    const part = await fetch(`${reg.url}/v2/acme/range/blobs/${digest}`, { headers: { Range: 'bytes=40000-', 'If-Range': `"${digest}"` } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 40000-49999/${blob.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(blob.subarray(40_000))).toBe(true);
    const other = await fetch(`${reg.url}/v2/acme/range/blobs/${digest}`, { headers: { Range: 'bytes=40000-', 'If-Range': '"sha256:other"' } });
    expect(other.status).toBe(200);
    await other.arrayBuffer();
  });

  it('has no referrers API, and mounts a blob from another repository', async () => {
    const blob = randomBytes(100);
    const digest = await client.pushBlob('acme/src', blob);
    expect((await fetch(`${reg.url}/v2/acme/src/referrers/${digest}`)).status).toBe(404);
    const mount = await fetch(`${reg.url}/v2/acme/dst/blobs/uploads/?mount=${digest}&from=acme/src`, { method: 'POST' });
    expect(mount.status).toBe(201);
    expect((await fetch(`${reg.url}/v2/acme/dst/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
  });

  const readBack = async (repo: string, f: OciFixture): Promise<Array<{ mediaType: string; digest: string; annotations?: Record<string, string> }>> => {
    const res = await client.getManifest(repo, 'v1', MANIFEST_ACCEPT);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(f.mediaType);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.equals(f.manifest)).toBe(true);
    const manifest = JSON.parse(body.toString()) as { config: { digest: string }; layers: Array<{ mediaType: string; digest: string; annotations?: Record<string, string> }> };
    for (const d of [manifest.config, ...manifest.layers]) {
      const blob = await client.getBlob(repo, d.digest);
      expect(digestOf(Buffer.from(await blob.arrayBuffer()))).toBe(d.digest);
    }
    return manifest.layers;
  };
  const blobOf = async (repo: string, digest: string): Promise<Buffer> => Buffer.from(await (await client.getBlob(repo, digest)).arrayBuffer());

  it('ORAS: a title per file, and a folder as an unpackable tar+gzip', async () => {
    const f = orasFixture([{ path: 'model.onnx', content: randomBytes(3000) }, { path: 'vocab.txt', content: 'a\nb\n' }], { dir: { name: 'tok', files: { 'x.json': '{}' } } });
    await pushFixture(client, 'acme/oras', 'v1', f);
    const layers = await readBack('acme/oras', f);
    expect(layers.map((l) => l.annotations?.[OCI.annotationTitle])).toEqual(['model.onnx', 'vocab.txt', 'tok']);
    const dir = layers[2] as { digest: string };
    expect(await untar(await blobOf('acme/oras', dir.digest), true)).toEqual({ 'tok/x.json': f.files['tok/x.json'] });
  });

  it('ModelPack: raw, tar and tar+gzip layers with org.cncf.model.filepath', async () => {
    const f = modelPackFixture([
      { path: 'model.safetensors', content: randomBytes(4000) },
      { path: 'config.json', content: '{"a":1}', kind: 'weight.config', format: 'tar' },
      { path: 'docs/README.md', content: '# hi\n', kind: 'doc', format: 'tar+gzip' },
    ]);
    await pushFixture(client, 'acme/modelpack', 'v1', f);
    const layers = await readBack('acme/modelpack', f);
    expect(layers.map((l) => [l.mediaType, l.annotations?.['org.cncf.model.filepath']])).toEqual([
      ['application/vnd.cncf.model.weight.v1.raw', 'model.safetensors'],
      ['application/vnd.cncf.model.weight.config.v1.tar', 'config.json'],
      ['application/vnd.cncf.model.doc.v1.tar+gzip', 'docs/README.md'],
    ]);
    const [raw, plain, gz] = await Promise.all(layers.map((l) => blobOf('acme/modelpack', l.digest)));
    expect(raw?.equals(f.files['model.safetensors'] as Buffer)).toBe(true);
    expect(await untar(plain as Buffer, false)).toEqual({ 'config.json': f.files['config.json'] });
    expect(await untar(gz as Buffer, true)).toEqual({ 'docs/README.md': f.files['docs/README.md'] });
  });

  it('KitOps: the Kitfile config names each layer, tar layers hold files at their paths, no mediaType in the body', async () => {
    const f = kitopsFixture([
      { path: 'models/tiny.gguf', content: randomBytes(5000), role: 'model' },
      { path: 'data/train.csv', content: 'x,y\n', role: 'dataset', gzip: true },
      { path: 'README.md', content: '# kit\n', role: 'docs' },
    ]);
    await pushFixture(client, 'acme/kit', 'v1', f);
    const layers = await readBack('acme/kit', f);
    expect(JSON.parse(f.manifest.toString()).mediaType).toBeUndefined();
    expect(layers.map((l) => l.mediaType)).toEqual([
      'application/vnd.kitops.modelkit.model.v1.tar',
      'application/vnd.kitops.modelkit.dataset.v1.tar+gzip',
      'application/vnd.kitops.modelkit.docs.v1.tar',
    ]);
    const kitfile = JSON.parse(f.blobs[0]?.toString() ?? '{}') as { model: { path: string; digest: string }; datasets: Array<{ path: string }> };
    expect(kitfile.model).toMatchObject({ path: 'models/tiny.gguf', digest: layers[0]?.digest });
    expect(kitfile.datasets[0]?.path).toBe('data/train.csv');
    expect(await untar(await blobOf('acme/kit', layers[1]?.digest ?? ''), true)).toEqual({ 'data/train.csv': f.files['data/train.csv'] });
  });

  it('Ollama: a Docker v2 manifest with application/vnd.ollama.image.* layers', async () => {
    const f = ollamaFixture({ model: randomBytes(6000), template: '{{ .Prompt }}', params: '{"stop":["<|eot|>"]}', license: 'MIT' });
    await pushFixture(client, 'library/tiny', 'v1', f);
    const layers = await readBack('library/tiny', f);
    expect(layers.map((l) => l.mediaType)).toEqual([
      'application/vnd.ollama.image.model',
      'application/vnd.ollama.image.template',
      'application/vnd.ollama.image.params',
      'application/vnd.ollama.image.license',
    ]);
    expect(Object.keys(f.files)).toEqual(['model.gguf', 'template', 'params', 'license']);
    // Without the Docker v2 type in Accept, distribution 2.8 tries to convert it to schema1 and fails.
    for (const accept of [undefined, '*/*', OCI.manifest]) {
      const res = await fetch(`${reg.url}/v2/library/tiny/manifests/v1`, accept ? { headers: { Accept: accept } } : {});
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ errors: [{ code: 'MANIFEST_INVALID' }] });
    }
  });

  it('an OCI index with platforms resolves to pushed manifests', async () => {
    const amd = orasFixture([{ path: 'a', content: 'amd64' }]);
    const arm = orasFixture([{ path: 'a', content: 'arm64' }]);
    const da = await pushFixture(client, 'acme/multi', digestOf(amd.manifest), amd);
    await pushFixture(client, 'acme/multi', digestOf(arm.manifest), arm);
    const idx = indexFixture([{ manifest: amd, platform: { os: 'linux', architecture: 'amd64' } }, { manifest: arm, platform: { os: 'linux', architecture: 'arm64' } }]);
    await client.pushManifest('acme/multi', 'v1', idx.manifest, idx.mediaType);
    const res = await client.getManifest('acme/multi', 'v1', MANIFEST_ACCEPT);
    expect(res.headers.get('content-type')).toBe(OCI.index);
    const body = (await res.json()) as { manifests: Array<{ digest: string; platform: { architecture: string } }> };
    expect(body.manifests.find((m) => m.platform.architecture === 'amd64')?.digest).toBe(da);
  });

  it('a moved tag points at the new manifest; the old one stays reachable by digest', async () => {
    const a = orasFixture([{ path: 'w', content: 'one' }]);
    const b = orasFixture([{ path: 'w', content: 'two' }]);
    const da = await pushFixture(client, 'acme/moving', 'v1', a);
    const db = await pushFixture(client, 'acme/moving', 'v1', b);
    const now = await fetch(`${reg.url}/v2/acme/moving/manifests/v1`, { method: 'HEAD', headers: { Accept: OCI.manifest } });
    expect(now.headers.get('docker-content-digest')).toBe(db);
    expect((await fetch(`${reg.url}/v2/acme/moving/manifests/${da}`, { method: 'HEAD', headers: { Accept: OCI.manifest } })).status).toBe(200);
  });
});

describe.skipIf(skip !== undefined)('real registry, htpasswd', () => {
  let reg: OciRegistry;
  beforeAll(async () => {
    reg = await startOciRegistry({ auth: { kind: 'htpasswd', users: { alice: 's3cret', bob: 'hunter2' } } });
  });
  afterAll(async () => reg?.close());

  it('refuses no and wrong credentials with 401 Basic, accepts a push and pull with the right ones', async () => {
    const none = await fetch(`${reg.url}/v2/`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Basic realm="test-registry"');
    const wrong = new OciTestClient(reg.url, { username: 'alice', password: 'nope' });
    await expect(wrong.pushBlob('acme/private', Buffer.from('x'))).rejects.toThrow(/HTTP 401/);
    const right = new OciTestClient(reg.url, { username: 'bob', password: 'hunter2' });
    const f = orasFixture([{ path: 'a.bin', content: randomBytes(2000) }]);
    const digest = await pushFixture(right, 'acme/private', 'v1', f);
    const res = await right.getManifest('acme/private', 'v1', MANIFEST_ACCEPT);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect((await fetch(`${reg.url}/v2/acme/private/manifests/v1`, { headers: { Accept: OCI.manifest } })).status).toBe(401);
  });

  it('behind a blob-redirect front: an authorised blob GET gets a 307 to a second origin, whose log shows any credential that follows', async () => {
    const front = await startBlobRedirect(reg);
    try {
      const client = new OciTestClient(front.url, { username: 'alice', password: 's3cret' });
      const f = orasFixture([{ path: 'big.bin', content: randomBytes(40_000) }]);
      await pushFixture(client, 'acme/cdn', 'v1', f);
      const digest = digestOf(f.blobs[1] as Buffer);
      const basic = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
      expect((await fetch(`${front.url}/v2/acme/cdn/blobs/${digest}`, { redirect: 'manual' })).status).toBe(401);
      const res = await fetch(`${front.url}/v2/acme/cdn/blobs/${digest}`, { redirect: 'manual', headers: { Authorization: basic } });
      expect(res.status).toBe(307);
      const location = res.headers.get('location') ?? '';
      expect(new URL(location).origin).toBe(front.blobHost.url);
      const part = await fetch(location, { headers: { Range: 'bytes=100-' } });
      expect(part.status).toBe(206);
      expect(Buffer.from(await part.arrayBuffer()).equals((f.blobs[1] as Buffer).subarray(100))).toBe(true);
      // A client that leaks the credential across the redirect is caught by the blob host's log.
      await (await fetch(location, { headers: { Authorization: basic } })).arrayBuffer();
      await front.blobHost.settled();
      expect(front.blobHost.requests.map((r) => r.authorization)).toEqual([undefined, basic]);
      expect(front.redirected).toEqual([`/v2/acme/cdn/blobs/${digest}`]);
    } finally {
      await front.close();
    }
  });
});

describe.skipIf(skip !== undefined)('real registry, token auth', () => {
  let reg: OciRegistry;
  let tokens: TokenServer;
  beforeAll(async () => {
    tokens = await startTokenServer({
      users: { ci: { password: 'pw', grants: [{ repository: 'acme/*', actions: ['pull', 'push'] }] }, reader: { password: 'ro', grants: [{ repository: '*', actions: ['pull'] }] } },
      anonymous: [{ repository: 'public/*', actions: ['pull'] }],
    });
    reg = await startOciRegistry({ auth: { kind: 'token', tokenServer: tokens } });
  });
  afterAll(async () => {
    await reg?.close();
    await tokens?.close();
  });

  it('401 with a Bearer challenge, a token from the realm, then the pull succeeds', async () => {
    const pusher = new OciTestClient(reg.url, { username: 'ci', password: 'pw' });
    const f = orasFixture([{ path: 'w.bin', content: randomBytes(3000) }]);
    const digest = await pushFixture(pusher, 'acme/tok', 'v1', f);

    const challenge = await fetch(`${reg.url}/v2/acme/tok/manifests/v1`, { headers: { Accept: OCI.manifest } });
    expect(challenge.status).toBe(401);
    const params = parseChallenge(challenge.headers.get('www-authenticate') ?? '');
    expect(params).toMatchObject({ realm: tokens.realm, service: tokens.service, scope: 'repository:acme/tok:pull' });

    tokens.requests.length = 0;
    const basic = `Basic ${Buffer.from('reader:ro').toString('base64')}`;
    const tokenRes = await fetch(`${params.realm}?service=${params.service}&scope=${params.scope}`, { headers: { Authorization: basic } });
    const body = (await tokenRes.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    expect(body.token).toBe(body.access_token);
    expect(body.expires_in).toBe(300);
    expect(tokens.requests[0]).toMatchObject({ user: 'reader', scopes: ['repository:acme/tok:pull'], granted: [{ type: 'repository', name: 'acme/tok', actions: ['pull'] }] });

    const pulled = await fetch(`${reg.url}/v2/acme/tok/manifests/v1`, { headers: { Accept: OCI.manifest, Authorization: `Bearer ${body.token}` } });
    expect(pulled.status).toBe(200);
    expect(pulled.headers.get('docker-content-digest')).toBe(digest);
    // The registry never saw a password: only the realm did.
    expect(tokens.requests.every((r) => r.authorization === basic)).toBe(true);
  });

  it('a pull-only token cannot push; wrong credentials get 401 from the realm; anonymous pull where allowed', async () => {
    const reader = new OciTestClient(reg.url, { username: 'reader', password: 'ro' });
    await expect(reader.pushBlob('acme/tok2', Buffer.from('nope'))).rejects.toThrow(/HTTP 401/);
    const tokenRes = await fetch(`${tokens.realm}?service=${tokens.service}&scope=repository:acme/tok:pull`, { headers: { Authorization: `Basic ${Buffer.from('ci:wrong').toString('base64')}` } });
    expect(tokenRes.status).toBe(401);

    const pusher = new OciTestClient(reg.url, { username: 'ci', password: 'pw' });
    await expect(pushFixture(pusher, 'public/x', 'v1', orasFixture([{ path: 'a', content: 'a' }]))).rejects.toThrow(/HTTP 401/);
    const anon = new OciTestClient(reg.url);
    expect((await anon.getManifest('public/none', 'v1', MANIFEST_ACCEPT)).status).toBe(404); // token granted, manifest unknown
    expect((await anon.getManifest('acme/tok', 'v1', MANIFEST_ACCEPT)).status).toBe(401);
  });
});
