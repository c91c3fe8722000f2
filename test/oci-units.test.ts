/** The network-free parts of the oci: source: references, challenges, config.json lookups, index narrowing, layouts. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mergeScopes, parseChallenge } from '../src/sources/oci/auth.js';
import { credentialsFor } from '../src/sources/oci/credentials.js';
import { type ImageIndex, parseDocument, selectManifest } from '../src/sources/oci/document.js';
import { checkPaths } from '../src/sources/oci/files.js';
import { archiveHolding, layersOf, layoutOf } from '../src/sources/oci/layouts/index.js';
import { mountRepository, parseReference } from '../src/sources/oci/reference.js';
import { normalizeOciReference } from '../src/util/docker-names.js';
import { basicAuth, fakeCredentialHelper, writeDockerConfig } from './support/docker-config.js';
import { kitopsFixture, modelPackFixture, ollamaFixture, orasFixture } from './support/oci-fixtures.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
const hex = 'a'.repeat(64);

describe('references', () => {
  it('parses host, port, repository, tag and digest; plain http only for loopback', () => {
    expect(parseReference('ghcr.io/acme/tiny:v1')).toEqual({ host: 'ghcr.io', repository: 'acme/tiny', tag: 'v1', base: 'https://ghcr.io' });
    expect(parseReference(`localhost:5000/a/b/c@sha256:${hex}`)).toEqual({ host: 'localhost:5000', repository: 'a/b/c', digest: `sha256:${hex}`, base: 'http://localhost:5000' });
    expect(parseReference('127.0.0.1:8080/x:latest').base).toBe('http://127.0.0.1:8080');
    expect(parseReference('10.0.0.1:8080/x:latest').base).toBe('https://10.0.0.1:8080');
    for (const bad of ['ghcr.io/', 'ghcr.io/../x:v1', 'GHCR.io/x:v1', 'ghcr.io/x:v1@sha256:abc', 'Alpine']) expect(() => parseReference(bad), bad).toThrow(/not an OCI reference/);
  });

  it('a name without a registry host is Docker Hub, as docker pull takes it: library/ for one part, API at registry-1.docker.io', () => {
    const hub = { host: 'docker.io', base: 'https://registry-1.docker.io' };
    expect(parseReference('alpine:3.20')).toEqual({ ...hub, repository: 'library/alpine', tag: '3.20' });
    expect(parseReference('docker.io/alpine:3.20')).toEqual({ ...hub, repository: 'library/alpine', tag: '3.20' });
    expect(parseReference('index.docker.io/library/alpine:3.20')).toEqual({ ...hub, repository: 'library/alpine', tag: '3.20' });
    expect(parseReference(`acme/tiny@sha256:${hex}`)).toEqual({ ...hub, repository: 'acme/tiny', digest: `sha256:${hex}` });
    expect(parseReference('docker.io/acme/tiny:v1')).toEqual({ ...hub, repository: 'acme/tiny', tag: 'v1' });
    // A first part with a dot or a port, or localhost, is a host; otherwise it is a Docker Hub namespace.
    expect(parseReference('localhost/tiny:v1')).toMatchObject({ host: 'localhost', repository: 'tiny', base: 'http://localhost' });
    expect(parseReference('registry.local/tiny:v1')).toMatchObject({ host: 'registry.local', repository: 'tiny' });
    expect(normalizeOciReference('ai/smollm2')).toBe('docker.io/ai/smollm2');
    expect(normalizeOciReference('localhost:5000/a:v1')).toBe('localhost:5000/a:v1');
  });
});

describe('--mount-from', () => {
  it('names a repository of the target registry, with or without its host', () => {
    const target = parseReference('ghcr.io/acme/b:v1');
    expect(mountRepository('acme/a', target)).toBe('acme/a');
    expect(mountRepository('ghcr.io/acme/a', target)).toBe('acme/a');
    for (const other of ['docker.io/acme/a', 'localhost/a', 'localhost:5000/a']) expect(() => mountRepository(other, target), other).toThrow(/only be mounted from a repository of ghcr.io/);
    for (const bad of ['acme/../a', 'Acme/a', 'acme//a', '']) expect(() => mountRepository(bad, target), bad).toThrow(/not a repository name/);
  });
});

describe('WWW-Authenticate', () => {
  it('reads the scheme and quoted or bare parameters', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
    });
    expect(parseChallenge('Basic realm=test')).toEqual({ scheme: 'basic', params: { realm: 'test' } });
    expect(parseChallenge(undefined)).toBeUndefined();
  });

  it('merges token scopes per repository, actions united and sorted', () => {
    // A HEAD's challenge asks pull only; the token must still allow the push that follows.
    expect(mergeScopes('repository:a/b:push,pull', 'repository:a/b:pull')).toBe('repository:a/b:pull,push');
    expect(mergeScopes('repository:b:pull,push repository:a:pull', 'repository:b:push repository:c:pull')).toBe('repository:b:pull,push repository:a:pull repository:c:pull');
    expect(mergeScopes('', '')).toBe('');
  });
});

describe('config.json credentials', () => {
  it('finds auths by host whatever the key form; identitytoken wins; none without a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oci-creds-'));
    dirs.push(dir);
    await writeDockerConfig(dir, {
      auths: {
        'https://reg.example:5000/v1/': { auth: basicAuth('u', 'p:with:colons') },
        'other.example': { username: 'x', password: 'y' },
        'tok.example': { identitytoken: 'refresh-me', auth: basicAuth('a', 'b') },
        'https://index.docker.io/v1/': { auth: basicAuth('hub', 'pw') },
      },
    });
    const env = { DOCKER_CONFIG: dir };
    expect(await credentialsFor('reg.example:5000', env)).toEqual({ kind: 'basic', username: 'u', password: 'p:with:colons' });
    expect(await credentialsFor('other.example', env)).toEqual({ kind: 'basic', username: 'x', password: 'y' });
    expect(await credentialsFor('tok.example', env)).toEqual({ kind: 'identity', token: 'refresh-me' });
    expect(await credentialsFor('registry-1.docker.io', env)).toEqual({ kind: 'basic', username: 'hub', password: 'pw' });
    expect(await credentialsFor('reg.example', env)).toBeUndefined();
    expect(await credentialsFor('reg.example:5000', { DOCKER_CONFIG: join(dir, 'missing') })).toBeUndefined();
  });

  it('a credsStore whose helper is not on PATH is an auth error (exit 9) naming the program', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oci-creds-'));
    dirs.push(dir);
    await writeDockerConfig(dir, { credsStore: 'xprim-none' });
    await expect(credentialsFor('reg.example', { DOCKER_CONFIG: dir, PATH: join(dir, 'no-bin') })).rejects.toMatchObject({ code: 'E_AUTH', message: expect.stringContaining('docker-credential-xprim-none') as unknown });
  });

  it('a credential helper is asked for Docker Hub by the server URL docker login stores it under', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oci-creds-'));
    dirs.push(dir);
    const helper = await fakeCredentialHelper(join(dir, 'bin'), 'xhub', { 'https://index.docker.io/v1/': { username: 'hub', secret: 'tok' } });
    await writeDockerConfig(dir, { credsStore: 'xhub' });
    const env = { DOCKER_CONFIG: dir, PATH: `${helper.binDir}:${process.env.PATH ?? ''}` };
    expect(await credentialsFor(parseReference('alpine:3').host, env)).toEqual({ kind: 'basic', username: 'hub', password: 'tok' });
    expect(await helper.calls()).toEqual([{ action: 'get', input: 'https://index.docker.io/v1/' }]);
  });
});

describe('documents and layouts', () => {
  const d = (n: number, platform?: { os: string; architecture: string }) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${String(n).repeat(64).slice(0, 64)}`, size: 10, annotations: {}, ...(platform ? { platform } : {}) });
  it('an index narrows to the only manifest, to the platform, or says why not', () => {
    const one: ImageIndex = { kind: 'index', mediaType: '', manifests: [d(1)] };
    expect(selectManifest(one, { os: 'linux', arch: 'x64' }, 'r').digest).toBe(d(1).digest);
    const withAttestation: ImageIndex = { kind: 'index', mediaType: '', manifests: [d(1, { os: 'linux', architecture: 'arm64' }), d(2, { os: 'unknown', architecture: 'unknown' })] };
    expect(selectManifest(withAttestation, { os: 'darwin', arch: 'x64' }, 'r').digest).toBe(d(1).digest);
    const two: ImageIndex = { kind: 'index', mediaType: '', manifests: [d(1, { os: 'linux', architecture: 'amd64' }), d(2, { os: 'windows', architecture: 'amd64' })] };
    expect(selectManifest(two, { os: 'win32', arch: 'x64' }, 'r').digest).toBe(d(2).digest);
    expect(() => selectManifest(two, { os: 'darwin', arch: 'arm64' }, 'r')).toThrow('no manifest for darwin/arm64: it has linux/amd64, windows/amd64');
    expect(() => selectManifest({ kind: 'index', mediaType: '', manifests: [d(1), d(2)] }, { os: 'linux', arch: 'x64' }, 'r')).toThrow(/index of 2 manifests without platforms/);
  });

  it('refuses what is not a v2 manifest with sha256 digests', () => {
    expect(() => parseDocument(Buffer.from('{"schemaVersion":1}'), 'r')).toThrow(/only version 2/);
    expect(() => parseDocument(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: 'sha512:ab', size: 1 }, layers: [] })), 'r')).toThrow(/only sha256/);
    expect(() => parseDocument(Buffer.from('nope'), 'r')).toThrow(/not JSON/);
  });

  it('detects each layout and maps its layers', () => {
    const doc = (f: { manifest: Buffer; mediaType: string }) => {
      const m = parseDocument(f.manifest, 'r', f.mediaType);
      if (m.kind !== 'manifest') throw new Error('index');
      return m;
    };
    const oras = doc(orasFixture([{ path: 'a.bin', content: 'a' }], { dir: { name: 'tok', files: { 'x.json': '{}' } } }));
    expect(layoutOf(oras)).toBe('oras');
    expect(layersOf('oras', oras, undefined, 'r').map((l) => [l.kind, l.path])).toEqual([['file', 'a.bin'], ['archive', 'tok']]);
    const mp = doc(modelPackFixture([{ path: 'w.safetensors', content: 'w' }, { path: 'c.json', content: '{}', format: 'tar' }]));
    expect(layoutOf(mp)).toBe('modelpack');
    expect(layersOf('modelpack', mp, undefined, 'r').map((l) => [l.kind, l.path])).toEqual([['file', 'w.safetensors'], ['archive', 'c.json']]);
    const kitFixture = kitopsFixture([{ path: 'm.gguf', content: 'm', role: 'model' }, { path: 'docs', content: 'd', role: 'docs' }]);
    const kit = doc(kitFixture);
    expect(layoutOf(kit)).toBe('kitops');
    expect(layersOf('kitops', kit, kitFixture.blobs[0], 'r').map((l) => [l.kind, l.path])).toEqual([['archive', 'm.gguf'], ['archive', 'docs']]);
    const ol = doc(ollamaFixture({ model: 'gguf', system: 'be brief' }));
    expect(layoutOf(ol)).toBe('ollama');
    expect(layersOf('ollama', ol, undefined, 'r').map((l) => l.path)).toEqual(['model.gguf', 'system']);
  });

  it('layer paths follow the manifest rules: two layers with one path (case-folded), or one leaving the folder, refuse the whole list', () => {
    const f = (path: string) => ({ path, size: 1, sha256: hex });
    expect(() => checkPaths([f('A.bin'), f('a.bin')], 'r')).toThrow(/invalid manifest .*appears twice/);
    expect(() => checkPaths([f('../../evil.bin')], 'r')).toThrow(/invalid manifest .*\.\.\/\.\.\/evil\.bin/);
    expect(() => checkPaths([f('a.bin'), f('tok/x.json')], 'r')).not.toThrow();
  });

  it('a file comes out of the archive with the longest path that holds it', () => {
    const a = (path: string) => ({ kind: 'archive' as const, path, digest: `sha256:${hex}`, size: 1, format: 'tar' as const });
    const all = [a('.'), a('models'), a('models/big.gguf')];
    expect(archiveHolding('models/big.gguf', all)?.path).toBe('models/big.gguf');
    expect(archiveHolding('models/other.bin', all)?.path).toBe('models');
    expect(archiveHolding('README.md', all)?.path).toBe('.');
    expect(archiveHolding('modelsX/a', [a('models')])).toBeUndefined();
  });
});

describe('known blob locations (oci-blob-locations.json)', () => {
  it('are read back per host; a host named like a prototype key, and a repository that is not a name, give no hint', async () => {
    const { writeFile } = await import('node:fs/promises');
    const { Store } = await import('../src/store/store.js');
    const { knownLocations, rememberLocations } = await import('../src/ops/oci-blob-locations.js');
    const dir = await mkdtemp(join(tmpdir(), 'xprim-locations-'));
    try {
      const store = new Store(dir);
      const digest = `sha256:${'a'.repeat(64)}`;
      await rememberLocations(store, '127.0.0.1:5000', 'acme/model-a', [digest]);
      expect([...(await knownLocations(store, '127.0.0.1:5000'))]).toEqual([[digest, 'acme/model-a']]);
      expect((await knownLocations(store, 'constructor')).size).toBe(0);
      // An edited file: a "repository" that would put a second scope into the token request.
      await writeFile(join(store.root, 'oci-blob-locations.json'), JSON.stringify({ version: 1, hosts: { h: { [digest]: 'a:pull repository:b' } } }));
      expect((await knownLocations(store, 'h')).size).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
