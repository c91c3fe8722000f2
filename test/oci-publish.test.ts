/**
 * `models publish DIR --to oci://HOST/REPO:TAG` against the real registry (htpasswd auth), behind a
 * logging front: an ORAS-compatible manifest (empty config, a title per layer), chunked uploads as
 * distribution 2.8 wants them, re-publishing uploads nothing, and `oci:` installs it byte-exactly.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, writeDockerConfig } from './support/docker-config.js';
import { EMPTY_DIGEST, MANIFEST_ACCEPT, OCI } from './support/oci-fixtures.js';
import { digestOf, OciTestClient } from './support/oci-push.js';
import { type OciRegistry, registrySkipReason, startOciRegistry } from './support/oci-registry.js';
import { type RequestLogFront, startRequestLog } from './support/oci-request-log.js';
import { startTokenServer, type TokenServer } from './support/oci-token-server.js';
import { cleanTemps, cliEnv, runCli, sha256, tempDir, writeTree } from './support/robustness.js';
import { publishOci } from '../src/ops/publish-oci.js';
import { Session } from '../src/project/session.js';

const skip = registrySkipReason();
afterAll(cleanTemps);

// Each test counts only its own registry front's requests: the two describes run side by side.
describe.skipIf(skip !== undefined).concurrent('publish --to oci://', () => {
  let reg: OciRegistry;
  let front: RequestLogFront;
  beforeAll(async () => {
    reg = await startOciRegistry({ auth: { kind: 'htpasswd', users: { ci: 'push-pw' } } });
    front = await startRequestLog(reg.url);
  });
  afterAll(async () => {
    await front?.close();
    await reg?.close();
  });

  it('pushes an ORAS artifact in chunks, re-publishes nothing, and installs back byte-exactly', async () => {
    const base = await tempDir('xprim-oci-pub-');
    const src = join(base, 'out');
    const files: Record<string, Buffer> = {
      'model.bin': randomBytes(2.5 * 1024 * 1024 + 123),
      'tokenizer/vocab.txt': Buffer.from('a\nb\nc\n'),
      'empty.txt': Buffer.alloc(0),
    };
    for (const [path, bytes] of Object.entries(files)) {
      await mkdir(join(src, path, '..'), { recursive: true });
      await writeFile(join(src, path), bytes);
    }
    const docker = join(base, 'docker');
    await writeDockerConfig(docker, { auths: { [front.host]: { auth: basicAuth('ci', 'push-pw') } } });
    // 1 MiB PATCHes (MODELS_UPLOAD_CHUNK): the chunked dance with a small file.
    const env = cliEnv(join(base, 'cache'), { DOCKER_CONFIG: docker, MODELS_UPLOAD_CHUNK: String(1024 * 1024) });
    const target = `oci://${front.host}/acme/published:v1`;

    const denied = await runCli(['publish', src, '--to', target], base, cliEnv(join(base, 'cache'), { DOCKER_CONFIG: join(base, 'none') }));
    expect(denied.code, denied.stderr).toBe(9);
    expect(denied.stderr).toContain('DOCKER_CONFIG');

    front.requests.length = 0;
    const pushed = await runCli(['publish', src, '--to', target, '--json', '--verbose'], base, env);
    expect(pushed.code, pushed.stderr).toBe(0);
    const result = JSON.parse(pushed.stdout) as { digest: string; blobsUploaded: number; unchanged: boolean; files: number };
    expect(result).toMatchObject({ files: 3, blobsUploaded: 4, unchanged: false });
    expect(pushed.stderr).not.toContain('push-pw');
    expect(pushed.stderr).not.toContain(basicAuth('ci', 'push-pw'));
    // distribution's upload dance: POST, a PATCH per 1 MiB chunk (the 2.5 MiB file takes three), PUT ?digest=.
    const modelDigest = digestOf(files['model.bin'] as Buffer);
    // PATCHes: model.bin 3, vocab.txt 1, the config 1, the empty file none.
    expect(front.requests.filter((r) => r.method === 'PATCH').length).toBe(5);
    expect(front.requests.filter((r) => r.method === 'PUT' && decodeURIComponent(r.query).includes(`digest=${modelDigest}`)).length).toBe(1);
    expect(front.requests.filter((r) => r.method === 'PUT' && r.path === '/v2/acme/published/manifests/v1').length).toBe(1);

    const client = new OciTestClient(reg.url, { username: 'ci', password: 'push-pw' });
    const res = await client.getManifest('acme/published', 'v1', MANIFEST_ACCEPT);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(result.digest);
    const manifest = (await res.json()) as { mediaType: string; artifactType: string; config: { mediaType: string; digest: string }; layers: Array<{ digest: string; size: number; annotations: Record<string, string> }> };
    expect(manifest.mediaType).toBe(OCI.manifest);
    expect(manifest.artifactType).toBe('application/vnd.xprim.model.v1');
    expect(manifest.config).toMatchObject({ mediaType: OCI.empty, digest: EMPTY_DIGEST });
    expect(manifest.layers.map((l) => l.annotations['org.opencontainers.image.title'])).toEqual(['empty.txt', 'model.bin', 'tokenizer/vocab.txt']);
    expect(manifest.layers[1]).toMatchObject({ digest: modelDigest, size: (files['model.bin'] as Buffer).length });

    front.requests.length = 0;
    const again = await runCli(['publish', src, '--to', target, '--json'], base, env);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ digest: result.digest, blobsUploaded: 0, bytesUploaded: 0, unchanged: true });
    expect(front.requests.filter((r) => r.method !== 'HEAD' && r.method !== 'GET')).toEqual([]);

    // One file changed: only its blob goes up, then the manifest.
    await writeFile(join(src, 'tokenizer/vocab.txt'), 'a\nb\nc\nd\n');
    front.requests.length = 0;
    const changed = await runCli(['publish', src, '--to', target], base, env);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stdout).toContain('1 blobs uploaded');
    expect(changed.stdout).toMatch(/digest: sha256:[0-9a-f]{64}/);
    expect(front.requests.filter((r) => r.method === 'POST').length).toBe(1);

    const dir = join(base, 'project');
    await mkdir(dir);
    await writeFile(join(dir, 'models.yaml'), `version: 1\nmodels:\n  pub:\n    oci: ${front.host}/acme/published:v1\n`);
    const install = await runCli(['install'], dir, env);
    expect(install.code, install.stderr).toBe(0);
    for (const [path, bytes] of Object.entries({ ...files, 'tokenizer/vocab.txt': Buffer.from('a\nb\nc\nd\n') })) {
      expect(sha256(await readFile(join(dir, 'models', 'pub', path))), path).toBe(sha256(bytes));
    }
    expect(await readFile(join(dir, 'models.lock'), 'utf8')).toContain('layout: oras');
  });

  it('refuses a target without a tag and flags of the folder mode', async () => {
    const base = await tempDir('xprim-oci-pub-');
    await mkdir(join(base, 'out'));
    await writeFile(join(base, 'out', 'a'), 'a');
    const env = cliEnv(join(base, 'cache'));
    const out = join(base, 'out');
    // Each refused before any request: run side by side.
    const [noTag, withModel, folder, elsewhere] = await Promise.all([
      runCli(['publish', out, '--to', `oci://${front.host}/acme/x@sha256:${'a'.repeat(64)}`], base, env),
      runCli(['publish', out, '--to', `oci://${front.host}/acme/x:v1`, '--model', 'a/b'], base, env),
      runCli(['publish', out, '--to', join(base, 'registry')], base, env),
      runCli(['publish', out, '--to', `oci://${front.host}/acme/x:v1`, '--mount-from', 'ghcr.io/acme/x'], base, env),
    ]);
    expect(noTag.code).toBe(2);
    expect(noTag.stderr).toContain('oci://HOST/REPO:TAG');
    expect(withModel.code).toBe(2);
    expect(withModel.stderr).toContain('--model does not apply');
    expect(folder.code).toBe(2);
    expect(folder.stderr).toContain('--model');
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toContain(`only be mounted from a repository of ${front.host}`);
  });
});

describe.skipIf(skip !== undefined).concurrent('publish --to oci:// over Bearer tokens: blobs mounted across repositories', () => {
  let reg: OciRegistry;
  let tokens: TokenServer;
  let front: RequestLogFront;
  beforeAll(async () => {
    tokens = await startTokenServer({ users: { ci: { password: 'pw-ci', grants: [{ repository: 'acme/*', actions: ['pull', 'push'] }] } } });
    reg = await startOciRegistry({ auth: { kind: 'token', tokenServer: tokens } });
    front = await startRequestLog(reg.url);
  });
  afterAll(async () => {
    await front?.close();
    await reg?.close();
    await tokens?.close();
  });

  const mounts = () => front.requests.filter((r) => r.method === 'POST' && new URLSearchParams(r.query).has('mount'));

  it('a second repository mounts what the first holds (remembered, or --mount-from); a declined mount is the upload; an unreadable one falls back', async () => {
    const base = await tempDir('xprim-oci-mount-');
    const src = join(base, 'out');
    await writeTree(src, { 'w.bin': randomBytes(300_000), 'b.txt': 'b' });
    const docker = join(base, 'docker');
    await writeDockerConfig(docker, { auths: { [front.host]: { auth: basicAuth('ci', 'pw-ci') } } });
    // The first publish through the CLI (Bearer tokens end to end); the others in-process, where the same code runs without a process each.
    const first = await runCli(['publish', src, '--to', `oci://${front.host}/acme/a:v1`, '--json'], base, cliEnv(join(base, 'cache'), { DOCKER_CONFIG: docker }));
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ blobsUploaded: 3, blobsMounted: 0 });
    const publish = async (repo: string, cache: string, mountFrom?: string) => {
      const session = new Session(undefined, { cacheDir: join(base, cache), env: { ...process.env, DOCKER_CONFIG: docker } });
      try {
        return await publishOci({ sourceDir: src, to: `oci://${front.host}/${repo}:v1`, session, ...(mountFrom ? { mountFrom } : {}) });
      } finally {
        await session.close();
      }
    };

    // The same cache remembers where each blob went: acme/b mounts all three, uploads nothing.
    front.requests.length = 0;
    tokens.requests.length = 0;
    expect(await publish('acme/b', 'cache')).toMatchObject({ blobsUploaded: 0, blobsMounted: 3, bytesUploaded: 0 });
    expect(mounts().map((r) => [new URLSearchParams(r.query).get('from'), r.status])).toEqual([['acme/a', 201], ['acme/a', 201], ['acme/a', 201]]);
    expect(front.requests.filter((r) => r.method === 'PATCH' || (r.method === 'PUT' && r.path.includes('/blobs/')))).toEqual([]);
    // The mount's token may push to acme/b and pull from acme/a, as ORAS asks it.
    expect(tokens.requests.some((r) => r.scopes.includes('repository:acme/b:pull,push') && r.scopes.includes('repository:acme/a:pull'))).toBe(true);

    // A fresh cache knows nothing: --mount-from says where. A blob acme/a lacks: the declined mount (202) is its upload.
    await writeFile(join(src, 'n.txt'), 'new file');
    front.requests.length = 0;
    expect(await publish('acme/c', 'fresh', 'acme/a')).toMatchObject({ blobsUploaded: 1, blobsMounted: 3 });
    expect(mounts().map((r) => r.status).sort()).toEqual([201, 201, 201, 202]);
    expect(front.requests.filter((r) => r.method === 'POST').length).toBe(4);
    expect(front.requests.filter((r) => r.method === 'PATCH').length).toBe(1);
    const client = new OciTestClient(reg.url, { username: 'ci', password: 'pw-ci' });
    expect(Buffer.from(await (await client.getBlob('acme/c', digestOf(Buffer.from('new file')))).arrayBuffer()).toString()).toBe('new file');

    // A repository the credentials may not read: the registry refuses the mount (401), each blob is uploaded.
    front.requests.length = 0;
    expect(await publish('acme/d', 'fresh2', `${front.host}/secret/x`)).toMatchObject({ blobsUploaded: 4, blobsMounted: 0 });
    expect(mounts().map((r) => r.status)).toEqual([401, 401, 401, 401]);
  });
});
