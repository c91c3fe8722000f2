/**
 * `oci:` sources end to end: the CLI as a child process against a real OCI registry (Debian's
 * docker-registry, distribution 2.8), behind a logging front that shows every request the CLI made.
 * Fixtures for each layout are pushed by an independent test client (test/support/oci-push.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexFixture, kitopsFixture, modelPackFixture, type OciFixture, OCI, ollamaFixture, orasFixture, pushFixture } from './support/oci-fixtures.js';
import { digestOf, OciTestClient } from './support/oci-push.js';
import { type OciRegistry, registrySkipReason, startOciRegistry } from './support/oci-registry.js';
import { type RequestLogFront, startRequestLog } from './support/oci-request-log.js';
import { cleanTemps, cliEnv, runCli, sha256, tempDir } from './support/robustness.js';
import { tar } from './support/tar.js';

const skip = registrySkipReason();
if (skip) console.warn(skip);

afterAll(cleanTemps);

async function project(body: string): Promise<{ dir: string; cache: string; base: string }> {
  const base = await tempDir('xprim-oci-');
  const dir = join(base, 'project');
  await mkdir(dir);
  await writeFile(join(dir, 'models.yaml'), `version: 1\nmodels:\n${body}`);
  return { dir, cache: join(base, 'cache'), base };
}

async function expectInstalled(dir: string, name: string, files: Record<string, Buffer>): Promise<void> {
  for (const [path, bytes] of Object.entries(files)) {
    expect(sha256(await readFile(join(dir, 'models', name, path))), path).toBe(sha256(bytes));
  }
}

async function listTree(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, rel), { withFileTypes: true }).catch(() => [])) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listTree(root, path)));
    else out.push(path);
  }
  return out.sort();
}

describe.skipIf(skip !== undefined)('oci: against a real registry (no auth)', () => {
  let reg: OciRegistry;
  let front: RequestLogFront;
  let client: OciTestClient;
  beforeAll(async () => {
    reg = await startOciRegistry();
    front = await startRequestLog(reg.url);
    client = new OciTestClient(reg.url);
  });
  afterAll(async () => {
    await front?.close();
    await reg?.close();
  });

  it('ORAS: installs byte-exact, pins the digest, repeats with zero requests; --frozen on a fresh cache never asks the tag', async () => {
    const f = orasFixture([{ path: 'model.onnx', content: randomBytes(300_000) }, { path: 'sub/vocab.txt', content: 'a\nb\n' }, { path: 'empty.txt', content: '' }], { dir: { name: 'tok', files: { 'x.json': '{"x":1}', 'deep/y.txt': 'y' } } });
    const digest = await pushFixture(client, 'acme/oras', 'v1', f);
    const { dir, cache, base } = await project(`  tiny:\n    oci: ${front.host}/acme/oras:v1\n`);
    // An XPRIM registry on the same origin gets MODELS_TOKEN; the oci: entry there must not.
    await writeFile(join(dir, 'models.yaml'), `version: 1\nregistry: ${front.url}/xprim\nmodels:\n  tiny:\n    oci: ${front.host}/acme/oras:v1\n`);
    const env = cliEnv(cache, { MODELS_TOKEN: 'models-token-never-for-oci' });
    const first = await runCli(['install'], dir, env);
    expect(first.code, first.stderr).toBe(0);
    await expectInstalled(dir, 'tiny', f.files);
    expect(await listTree(join(dir, 'models', 'tiny'))).toEqual(Object.keys(f.files).sort());
    const lock = await readFile(join(dir, 'models.lock'), 'utf8');
    expect(lock).toContain('kind: oci');
    expect(lock).toContain(`digest: ${digest}`);
    expect(lock).toContain('layout: oras');
    expect(lock).toContain(`manifest: ${digest.slice(7)}`);
    expect(lock).toContain(`sha256: ${sha256(f.files['model.onnx'] as Buffer)}`);
    expect(lock).toContain(`sha256: ${sha256(f.files['tok/deep/y.txt'] as Buffer)}`);
    expect(front.requests.filter((r) => r.authorization !== undefined)).toEqual([]);

    front.requests.length = 0;
    const again = await runCli(['install', '--frozen'], dir, env);
    expect(again.code, again.stderr).toBe(0);
    expect(front.requests).toEqual([]);
    // verify, and list / info / doctor showing the reference and the digest from the lock alone: side by side, none writes.
    const [verify, list, info, doctor] = await Promise.all([['verify'], ['list'], ['info', 'tiny', '--json'], ['doctor']].map((args) => runCli(args, dir, env)));
    expect(verify?.code, verify?.stderr).toBe(0);
    if (!list || !info || !doctor) throw new Error('a run is missing');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`oci:${front.host}/acme/oras:v1 +v1 \\(${digest}\\).*installed`));
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({
      model: `oci:${front.host}/acme/oras:v1`,
      resolved: digest,
      manifest: digest.slice(7),
      registry: front.host,
      metadata: { reference: `${front.host}/acme/oras:v1`, digest, layout: 'oras' },
      install: { status: 'installed' },
    });
    expect(doctor.code, doctor.stdout).toBe(0);
    expect(doctor.stdout).toContain(`oci:${front.host}/acme/oras:v1@v1 → ${digest}: installed`);
    expect(front.requests).toEqual([]);

    const fresh = join(base, 'fresh-cache');
    await writeFile(join(dir, 'models', 'tiny', 'model.onnx'), 'damaged');
    const frozen = await runCli(['install', '--frozen'], dir, cliEnv(fresh));
    expect(frozen.code, frozen.stderr).toBe(0);
    await expectInstalled(dir, 'tiny', f.files);
    const paths = front.requests.map((r) => `${r.method} ${r.path}`);
    expect(paths).toContain(`GET /v2/acme/oras/manifests/${digest}`);
    expect(paths.filter((p) => p.includes('/manifests/v1'))).toEqual([]);
    expect(paths.filter((p) => p.includes('/blobs/')).length).toBeGreaterThan(0);
  });

  // One project for the three other layouts: one install, one fresh-cache --frozen, each layout checked.
  it('ModelPack (raw, tar, tar+gzip layers; files: globs), KitOps (tar layers at their Kitfile paths), Ollama (Docker v2 layers as model.gguf, template, …)', async () => {
    const mp = modelPackFixture([
      { path: 'model.safetensors', content: randomBytes(200_000) },
      { path: 'config.json', content: '{"a":1}', kind: 'weight.config', format: 'tar' },
      { path: 'docs/README.md', content: '# hi\n', kind: 'doc', format: 'tar+gzip' },
    ]);
    const kit = kitopsFixture([
      { path: 'models/tiny.gguf', content: randomBytes(150_000), role: 'model' },
      { path: 'data/train.csv', content: 'x,y\n1,2\n', role: 'dataset', gzip: true },
      { path: 'README.md', content: '# kit\n', role: 'docs' },
    ]);
    const ollama = ollamaFixture({ model: randomBytes(120_000), template: '{{ .Prompt }}', params: '{"stop":["<|eot|>"]}', license: 'MIT' });
    const mpDigest = await pushFixture(client, 'acme/modelpack', 'v1', mp);
    await pushFixture(client, 'acme/kit', 'v1', kit);
    await pushFixture(client, 'library/tiny', '1b', ollama);
    const { dir, cache, base } = await project(
      `  mp:\n    oci: ${front.host}/acme/modelpack:v1\n  weights:\n    oci: ${front.host}/acme/modelpack@${mpDigest}\n    files: ["*.safetensors", "*.json"]\n    exclude: ["config.json"]\n` +
        `  kit:\n    oci: ${front.host}/acme/kit:v1\n  llama:\n    oci: ${front.host}/library/tiny:1b\n`,
    );
    const expectAll = async () => {
      await expectInstalled(dir, 'mp', mp.files);
      expect(await listTree(join(dir, 'models', 'weights'))).toEqual(['model.safetensors']);
      await expectInstalled(dir, 'kit', kit.files);
      await expectInstalled(dir, 'llama', ollama.files);
      expect(await listTree(join(dir, 'models', 'llama'))).toEqual(['license', 'model.gguf', 'params', 'template']);
    };
    const result = await runCli(['install'], dir, cliEnv(cache));
    expect(result.code, result.stderr).toBe(0);
    await expectAll();
    const lock = await readFile(join(dir, 'models.lock'), 'utf8');
    for (const layout of ['modelpack', 'kitops', 'ollama']) expect(lock).toContain(`layout: ${layout}`);
    // A fresh cache: the Kitfile, the manifests and the tar layers come by digest, the lock alone says what to expect.
    const frozen = await runCli(['install', '--frozen', '--force'], dir, cliEnv(join(base, 'fresh')));
    expect(frozen.code, frozen.stderr).toBe(0);
    await expectAll();
  });

  it('an index picks the manifest of --platform or `when:`, the lock pins it and its platform, outdated compares that platform; none fits: the platforms it has', async () => {
    const amd = orasFixture([{ path: 'a.bin', content: 'amd64 bytes' }]);
    const arm = orasFixture([{ path: 'a.bin', content: 'arm64 bytes' }]);
    await pushFixture(client, 'acme/multi', digestOf(amd.manifest), amd);
    await pushFixture(client, 'acme/multi', digestOf(arm.manifest), arm);
    const idx = indexFixture([{ manifest: amd, platform: { os: 'linux', architecture: 'amd64' } }, { manifest: arm, platform: { os: 'linux', architecture: 'arm64' } }]);
    await client.pushManifest('acme/multi', 'v1', idx.manifest, idx.mediaType);
    // `arm` by its when:, `any` by --platform: both pin the arm64 manifest, and the lock says which platform it is.
    const { dir, cache } = await project(`  arm:\n    oci: ${front.host}/acme/multi:v1\n    when: { os: [linux], arch: [arm64] }\n  any:\n    oci: ${front.host}/acme/multi:v1\n`);
    const none = await project(`  win:\n    oci: ${front.host}/acme/multi:v1\n    when: { os: [win32], arch: [x64] }\n`);
    const [locked, refused] = await Promise.all([runCli(['lock', '--platform', 'linux-arm64'], dir, cliEnv(cache)), runCli(['lock'], none.dir, cliEnv(none.cache))]);
    expect(locked.code, locked.stderr).toBe(0);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('no manifest for windows/amd64: it has linux/amd64, linux/arm64');
    const lock = await readFile(join(dir, 'models.lock'), 'utf8');
    expect(lock.split(`digest: ${digestOf(arm.manifest)}`).length - 1).toBe(2);
    expect(lock.split('platform: linux/arm64').length - 1).toBe(2);
    expect(lock).not.toContain(digestOf(amd.manifest));
    // outdated narrows by the pinned platform, not this machine's: nothing moved.
    const current = await runCli(['outdated'], dir, cliEnv(cache));
    expect(current.code, current.stdout + current.stderr).toBe(0);
  });

  it('outdated when the tag moves; update follows it fetching only the new blobs; a digest reference is always current', async () => {
    const shared = randomBytes(100_000);
    const a = orasFixture([{ path: 'shared.bin', content: shared }, { path: 'w.txt', content: 'one' }]);
    const b = orasFixture([{ path: 'shared.bin', content: shared }, { path: 'w.txt', content: 'two' }]);
    const da = await pushFixture(client, 'acme/moving', 'v1', a);
    const { dir, cache } = await project(`  mov:\n    oci: ${front.host}/acme/moving:v1\n  fixed:\n    oci: ${front.host}/acme/moving@${da}\n`);
    const env = cliEnv(cache);
    expect((await runCli(['install'], dir, env)).code).toBe(0);
    const db = await pushFixture(client, 'acme/moving', 'v1', b);
    const moved = await runCli(['outdated', '--json'], dir, env);
    expect(moved.code, moved.stderr).toBe(1);
    const report = JSON.parse(moved.stdout) as { models?: Array<{ name: string; status: string; latest?: { resolved: string } }> } | Array<{ name: string; status: string; latest?: { resolved: string } }>;
    const rows = Array.isArray(report) ? report : (report.models ?? []);
    expect(rows.find((r) => r.name === 'mov')).toMatchObject({ status: 'outdated', latest: { resolved: db } });
    expect(rows.find((r) => r.name === 'fixed')?.status).toBe('current');
    front.requests.length = 0;
    const update = await runCli(['update', 'mov'], dir, env);
    expect(update.code, update.stderr).toBe(0);
    await expectInstalled(dir, 'mov', b.files);
    const blobs = front.requests.filter((r) => r.path.includes('/blobs/')).map((r) => r.path.split('/').pop());
    expect(blobs).toEqual([digestOf(Buffer.from('two'))]);
  });

  // The refusals below touch nothing the others count: run side by side (after the tests above).
  it.concurrent('a tar layer with an entry outside the model folder: exit 6 at lock, nothing written', async ({ expect }) => {
    const evil = tar([{ name: 'config.json', content: '{}' }, { name: '../escape.txt', content: 'pwned' }]);
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI.manifest,
      artifactType: 'application/vnd.cncf.model.manifest.v1+json',
      config: { mediaType: 'application/vnd.cncf.model.config.v1+json', digest: digestOf(Buffer.from('{}')), size: 2 },
      layers: [{ mediaType: 'application/vnd.cncf.model.weight.config.v1.tar', digest: digestOf(evil), size: evil.length, annotations: { 'org.cncf.model.filepath': 'config.json' } }],
    };
    const f: OciFixture = { manifest: Buffer.from(JSON.stringify(manifest)), mediaType: OCI.manifest, blobs: [Buffer.from('{}'), evil], files: {} };
    await pushFixture(client, 'acme/evil', 'v1', f);
    const { dir, cache, base } = await project(`  evil:\n    oci: ${front.host}/acme/evil:v1\n`);
    const result = await runCli(['install'], dir, cliEnv(cache));
    expect(result.code, result.stderr).toBe(6);
    expect(result.stderr).toContain('../escape.txt');
    expect(await listTree(join(dir, 'models'))).toEqual([]);
    await expect(readFile(join(dir, 'models.lock'))).rejects.toThrow();
    expect(await listTree(base)).not.toContain('escape.txt');
  });

  // Two layers with one path (case-folded) and the other path rules: oci-units (checkPaths).
  it.concurrent('a layer title that leaves the model folder refuses the whole artifact (exit 1), nothing written', async ({ expect }) => {
    await pushFixture(client, 'acme/title-escape', 'v1', orasFixture([{ path: '../../evil.bin', content: 'x' }]));
    const { dir, cache, base } = await project(`  t:\n    oci: ${front.host}/acme/title-escape:v1\n`);
    const result = await runCli(['install'], dir, cliEnv(cache));
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/invalid manifest .*\.\.\/\.\.\/evil\.bin/);
    expect(await listTree(join(dir, 'models'))).toEqual([]);
    await expect(readFile(join(dir, 'models.lock'))).rejects.toThrow();
    expect((await listTree(base)).filter((p) => p.endsWith('evil.bin'))).toEqual([]);
  });

  it.concurrent('a missing tag exits 3 naming the reference; a lock naming a file no layer has exits 2', async ({ expect }) => {
    const { dir, cache } = await project(`  gone:\n    oci: ${front.host}/acme/nothing:v9\n`);
    const f = orasFixture([{ path: 'a.bin', content: 'aaa' }]);
    await pushFixture(client, 'acme/edited', 'v1', f);
    const p = await project(`  e:\n    oci: ${front.host}/acme/edited:v1\n`);
    const [missing, locked] = await Promise.all([runCli(['install'], dir, cliEnv(cache)), runCli(['lock'], p.dir, cliEnv(p.cache))]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain(`${front.host}/acme/nothing:v9`);
    expect(locked.code, locked.stderr).toBe(0);
    const lockPath = join(p.dir, 'models.lock');
    await writeFile(lockPath, (await readFile(lockPath, 'utf8')).replace('path: a.bin', 'path: b.bin'));
    const edited = await runCli(['install', '--frozen'], p.dir, cliEnv(p.cache));
    expect(edited.code, edited.stderr).toBe(2);
    expect(edited.stderr).toContain('b.bin');
  });
});
