/**
 * `hf:` sources end to end: the CLI as a child process against the stand-in Hub
 * (test/support/hub-server.ts: the API, resolve with a 302 to a second origin acting as the file
 * host, X-Error-Code, gated and private repos, 429), with real temp folders.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type HubServer, startHubServer } from './support/hub-server.js';
import { cleanTemps, cliEnv, randomish, runCli, sha256, sleep, snapshot, startCli, tempDir } from './support/robustness.js';

let hub: HubServer;
beforeAll(async () => {
  hub = await startHubServer({ treePageSize: 2 });
});
afterAll(async () => {
  await hub.close();
  await cleanTemps();
});
beforeEach(() => hub.reset());

let repoCounter = 0;
/** A fresh repo name per test: tests share one stand-in Hub. */
const repoName = (stem: string): string => `acme/${stem}-${++repoCounter}`;

interface Project {
  base: string;
  dir: string;
  cache: string;
  env: (extra?: Record<string, string | undefined>) => NodeJS.ProcessEnv;
}

/** A project folder, a cache, and an environment that sees only the stand-in Hub (no machine token or HF cache). */
async function project(yaml: string): Promise<Project> {
  const base = await tempDir('xprim-hf-');
  const dir = join(base, 'project');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'models.yaml'), `version: 1\nmodels:\n${yaml}`);
  const cache = join(base, 'cache');
  const env = (extra: Record<string, string | undefined> = {}) =>
    cliEnv(cache, {
      HF_ENDPOINT: hub.url,
      HF_TOKEN: undefined,
      HUGGING_FACE_HUB_TOKEN: undefined,
      HF_TOKEN_PATH: undefined,
      HUGGINGFACE_HUB_CACHE: undefined,
      HF_HOME: join(base, 'hf-home'),
      HF_HUB_CACHE: join(base, 'hf-hub'),
      ...extra,
    });
  return { base, dir, cache, env };
}

const weights = randomish(700_000, 11);
const encoder = randomish(90_000, 12);
const decoder = randomish(80_000, 13);
const config = '{"model_type":"whisper"}\n';
const tokenizer = '{"version":"1.0","vocab":{}}\n';

/** A whisper-like repo: LFS weights, git JSON files, an onnx/ folder. */
async function whisperRepo(id: string, options: { private?: boolean } = {}): Promise<string> {
  const repo = hub.createRepo(id, options);
  return repo.commit({
    files: [
      { path: '.gitattributes', content: '*.onnx filter=lfs\n' },
      { path: 'README.md', content: '# tiny\n' },
      { path: 'config.json', content: config },
      { path: 'tokenizer.json', content: tokenizer },
      { path: 'model.safetensors', content: weights, lfs: true },
      { path: 'onnx/encoder_model.onnx', content: encoder, lfs: true },
      { path: 'onnx/decoder_model.onnx', content: decoder, lfs: true },
      { path: 'onnx/empty.txt', content: '' },
    ],
  });
}

const resolveRequests = () => hub.requests.filter((r) => r.path.includes('/resolve/'));
const apiRequests = () => hub.requests.filter((r) => r.path.startsWith('/api/'));

describe('hf: lock and install', () => {
  it('pins the commit and every file, installs byte-exact, and a repeat makes no request', async () => {
    const id = repoName('whisper');
    const commit = await whisperRepo(id);
    const p = await project(`  whisper:\n    hf: ${id}\n`);
    const first = await runCli(['install'], p.dir, p.env());
    expect(first.code, first.stderr).toBe(0);
    const dest = join(p.dir, 'models', 'whisper');
    expect(sha256(await readFile(join(dest, 'model.safetensors')))).toBe(sha256(weights));
    expect(sha256(await readFile(join(dest, 'onnx', 'encoder_model.onnx')))).toBe(sha256(encoder));
    expect(await readFile(join(dest, 'config.json'), 'utf8')).toBe(config);
    expect(await readFile(join(dest, 'onnx', 'empty.txt'), 'utf8')).toBe('');

    const lock = await readFile(join(p.dir, 'models.lock'), 'utf8');
    expect(lock).toContain('kind: hf');
    expect(lock).toContain(`repo: ${id}`);
    expect(lock).toContain('type: model');
    expect(lock).toContain('revision: main');
    expect(lock).toContain(`commit: ${commit}`);
    expect(lock).toContain(`path: model.safetensors, size: ${weights.length}, sha256: ${sha256(weights)}`);
    expect(lock).toContain(`path: config.json, size: ${config.length}, sha256: ${sha256(config)}`);
    expect(lock).toContain(`path: onnx/decoder_model.onnx, size: ${decoder.length}, sha256: ${sha256(decoder)}`);
    // The tree was paged (2 entries a page) and every page asked for.
    expect(apiRequests().filter((r) => r.path.includes('/tree/')).length).toBeGreaterThan(3);
    // Git files were fetched once, at lock time, and the install took them from the store.
    for (const path of ['config.json', 'tokenizer.json', 'README.md', '.gitattributes']) {
      expect(resolveRequests().filter((r) => r.path.endsWith(`/${path}`)).length, path).toBe(1);
    }
    // LFS files: one resolve each, redirected to the file host.
    await hub.settled();
    expect(hub.fileHost.requests.map((r) => r.path.split('/').pop()).sort()).toEqual([sha256(decoder), sha256(encoder), sha256(weights)].sort());

    hub.reset();
    const again = await runCli(['install'], p.dir, p.env());
    expect(again.code, again.stderr).toBe(0);
    const frozen = await runCli(['install', '--frozen'], p.dir, p.env());
    expect(frozen.code, frozen.stderr).toBe(0);
    await hub.settled();
    expect(hub.requests).toEqual([]);
    expect(hub.fileHost.requests).toEqual([]);
    // A second lock rewrites nothing and asks nothing: the entry did not change.
    expect((await runCli(['lock'], p.dir, p.env())).code).toBe(0);
    expect(await readFile(join(p.dir, 'models.lock'), 'utf8')).toBe(lock);
    expect(hub.requests).toEqual([]);

    const verify = await runCli(['verify'], p.dir, p.env());
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const list = await runCli(['list', '--json'], p.dir, p.env());
    expect(JSON.parse(list.stdout).models[0]).toMatchObject({ name: 'whisper', model: `hf:${id}`, version: 'main', resolved: commit, status: 'installed' });
  });

  it('install --frozen on a fresh cache makes no API request: resolve downloads only', async () => {
    const id = repoName('frozen');
    await whisperRepo(id);
    const p = await project(`  w:\n    hf: ${id}\n`);
    expect((await runCli(['lock'], p.dir, p.env())).code).toBe(0);
    hub.reset();
    const fresh = join(p.base, 'fresh-cache');
    const result = await runCli(['install', '--frozen'], p.dir, p.env({ MODELS_CACHE_DIR: fresh }));
    expect(result.code, result.stderr).toBe(0);
    expect(apiRequests()).toEqual([]);
    // Seven non-empty files, one resolve each, at the locked commit.
    expect(resolveRequests().length).toBe(7);
    expect(sha256(await readFile(join(p.dir, 'models', 'w', 'model.safetensors')))).toBe(sha256(weights));
  });

  it('files: and exclude: are globs over repo paths; a pattern that matches nothing exits 3 naming it', async () => {
    const id = repoName('globs');
    await whisperRepo(id);
    const p = await project(`  w:\n    hf: ${id}\n    files: ["*.json", "onnx/*.onnx"]\n    exclude: ["onnx/decoder*"]\n`);
    const result = await runCli(['install'], p.dir, p.env());
    expect(result.code, result.stderr).toBe(0);
    const files = [...(await snapshot(join(p.dir, 'models', 'w'))).keys()].filter((k) => !k.endsWith('/')).sort();
    expect(files).toEqual(['config.json', 'onnx/encoder_model.onnx', 'tokenizer.json']);
    // Nothing unselected was downloaded.
    expect(resolveRequests().some((r) => r.path.endsWith('README.md') || r.path.endsWith('model.safetensors'))).toBe(false);

    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nmodels:\n  w:\n    hf: ${id}\n    files: ["*.onnx"]\n`);
    const none = await runCli(['lock'], p.dir, p.env());
    expect(none.code, none.stderr).toBe(3);
    expect(none.stderr).toContain('files: "*.onnx" matches no file');
    expect(none.stderr).toContain('**/*.onnx');
  });

  it('a dataset repo: datasets/<org>/<repo>, under /api/datasets/ and /datasets/…/resolve/', async () => {
    const id = repoName('data');
    const csv = 'a,b\n1,2\n';
    const parquet = randomish(50_000, 14);
    await hub.createRepo(id, { type: 'dataset' }).commit({ files: [{ path: 'train.csv', content: csv }, { path: 'data/train.parquet', content: parquet, lfs: true }] });
    const p = await project(`  ds:\n    hf: datasets/${id}\n`);
    const result = await runCli(['install'], p.dir, p.env());
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(p.dir, 'models', 'ds', 'train.csv'), 'utf8')).toBe(csv);
    expect(sha256(await readFile(join(p.dir, 'models', 'ds', 'data', 'train.parquet')))).toBe(sha256(parquet));
    expect(apiRequests().every((r) => r.path.startsWith(`/api/datasets/${id}/`))).toBe(true);
    expect(resolveRequests().every((r) => r.path.startsWith(`/datasets/${id}/resolve/`))).toBe(true);
    expect(await readFile(join(p.dir, 'models.lock'), 'utf8')).toContain('type: dataset');
  });

  it('a tag, a refs/pr/N ref (URL-encoded) and a 40-hex commit pin the commit they name', async () => {
    const id = repoName('refs');
    const repo = hub.createRepo(id);
    const c1 = await repo.commit({ files: [{ path: 'v.txt', content: 'one\n' }] });
    repo.tag('v1', c1);
    const c2 = await repo.commit({ files: [{ path: 'v.txt', content: 'two\n' }] });
    repo.pullRequest(1, c2);
    await repo.commit({ files: [{ path: 'v.txt', content: 'three\n' }] });
    const p = await project(`  tag:\n    hf: ${id}\n    revision: v1\n  pr:\n    hf: ${id}\n    revision: refs/pr/1\n    path: pr\n  pinned:\n    hf: ${id}\n    revision: ${c1}\n`);
    const result = await runCli(['install'], p.dir, p.env());
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(p.dir, 'models', 'tag', 'v.txt'), 'utf8')).toBe('one\n');
    expect(await readFile(join(p.dir, 'models', 'pr', 'v.txt'), 'utf8')).toBe('two\n');
    expect(await readFile(join(p.dir, 'models', 'pinned', 'v.txt'), 'utf8')).toBe('one\n');
    expect(apiRequests().some((r) => r.path === `/api/models/${id}/revision/refs%2Fpr%2F1`)).toBe(true);
  });

  it('a renamed repo: the Hub\'s 307 to the new name is followed, token and all, on the same origin', async () => {
    const from = repoName('old-name');
    const to = repoName('new-name');
    await whisperRepo(from, { private: true });
    const token = 'hf_renameToken';
    hub.addToken(token);
    hub.repo(from).granted.add(token);
    hub.renameRepo(from, to);
    const p = await project(`  w:\n    hf: ${from}\n    files: ["*.json", "onnx/*.onnx"]\n`);
    const result = await runCli(['install'], p.dir, p.env({ HF_TOKEN: token }));
    expect(result.code, result.stderr).toBe(0);
    expect(sha256(await readFile(join(p.dir, 'models', 'w', 'onnx', 'encoder_model.onnx')))).toBe(sha256(encoder));
    expect(hub.requests.some((r) => r.status === 307)).toBe(true);
    expect(hub.requests.every((r) => r.authorization === `Bearer ${token}`)).toBe(true);
    await hub.settled();
    expect(hub.fileHost.requests.every((r) => r.authorization === undefined)).toBe(true);
  });
});

describe('hf: tokens and refusals', () => {
  it('a private repo with HF_TOKEN: the token goes to the Hub only, never to the file host, the output, the lock or the log', async () => {
    const id = repoName('private');
    await whisperRepo(id, { private: true });
    const token = 'hf_secretToken123456';
    hub.addToken(token);
    hub.repo(id).granted.add(token);
    const p = await project(`  w:\n    hf: ${id}\n`);
    const result = await runCli(['install', '--verbose'], p.dir, p.env({ HF_TOKEN: token, MODELS_TOKEN: 'models-secret' }));
    expect(result.code, result.stderr).toBe(0);
    expect(sha256(await readFile(join(p.dir, 'models', 'w', 'model.safetensors')))).toBe(sha256(weights));
    await hub.settled();
    expect(hub.requests.length).toBeGreaterThan(0);
    expect(hub.requests.every((r) => r.authorization === `Bearer ${token}`)).toBe(true);
    expect(hub.fileHost.requests.length).toBe(3);
    expect(hub.fileHost.requests.every((r) => r.authorization === undefined)).toBe(true);
    const lock = await readFile(join(p.dir, 'models.lock'), 'utf8');
    for (const text of [result.stdout, result.stderr, lock]) {
      expect(text).not.toContain(token);
      expect(text).not.toContain('models-secret');
    }
    // The verbose log did log the requests (so the check above means something).
    expect(result.stderr).toContain('/resolve/');
  });

  it('without HF_TOKEN the stored token ($HF_HOME/token) is used', async () => {
    const id = repoName('stored');
    await whisperRepo(id, { private: true });
    const token = 'hf_storedToken98765';
    hub.addToken(token);
    hub.repo(id).granted.add(token);
    const p = await project(`  w:\n    hf: ${id}\n    files: [config.json]\n`);
    await mkdir(join(p.base, 'hf-home'), { recursive: true });
    await writeFile(join(p.base, 'hf-home', 'token'), `${token}\n`);
    const result = await runCli(['install'], p.dir, p.env());
    expect(result.code, result.stderr).toBe(0);
    expect(hub.requests.every((r) => r.authorization === `Bearer ${token}`)).toBe(true);
  });

  it('a private repo without a token, and a gated repo without access, exit 9 naming HF_TOKEN', async () => {
    const priv = repoName('private');
    await whisperRepo(priv, { private: true });
    const p = await project(`  w:\n    hf: ${priv}\n`);
    const anonymous = await runCli(['install'], p.dir, p.env());
    expect(anonymous.code, anonymous.stderr).toBe(9);
    expect(anonymous.stderr).toContain(`hf:${priv}`);
    expect(anonymous.stderr).toContain('HF_TOKEN');

    const gated = repoName('gated');
    await whisperRepo(gated);
    hub.gate(gated, ['hf_accepted']);
    hub.addToken('hf_notAccepted');
    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nmodels:\n  g:\n    hf: ${gated}\n`);
    const noToken = await runCli(['install'], p.dir, p.env());
    expect(noToken.code, noToken.stderr).toBe(9);
    expect(noToken.stderr).toContain('gated');
    expect(noToken.stderr).toContain('HF_TOKEN');
    const notAccepted = await runCli(['install'], p.dir, p.env({ HF_TOKEN: 'hf_notAccepted' }));
    expect(notAccepted.code, notAccepted.stderr).toBe(9);
    expect(notAccepted.stderr).toContain('accept its terms');
    expect(notAccepted.stderr).not.toContain('hf_notAccepted');
    const invalid = await runCli(['install'], p.dir, p.env({ HF_TOKEN: 'hf_bogus' }));
    expect(invalid.code, invalid.stderr).toBe(9);
    const accepted = await runCli(['install'], p.dir, p.env({ HF_TOKEN: 'hf_accepted' }));
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(sha256(await readFile(join(p.dir, 'models', 'g', 'model.safetensors')))).toBe(sha256(weights));
  });

  it('a gated repo of LFS files only locks without a token; install then exits 9, and the file host never sees a request', async () => {
    const id = repoName('gated-lfs');
    await hub.createRepo(id).commit({ files: [{ path: 'w.bin', content: randomish(5000, 15), lfs: true }] });
    hub.gate(id, ['hf_ok']);
    const p = await project(`  g:\n    hf: ${id}\n`);
    const result = await runCli(['install'], p.dir, p.env());
    expect(result.code, result.stderr).toBe(9);
    expect(result.stderr).toContain('HF_TOKEN');
    await hub.settled();
    expect(hub.fileHost.requests).toEqual([]);
    await expect(readFile(join(p.dir, 'models', 'g', 'w.bin'))).rejects.toThrow();
  });

  it('a missing repo (with a token), revision or file exits 3 naming it', async () => {
    const id = repoName('exists');
    await whisperRepo(id);
    hub.addToken('hf_valid');
    const p = await project(`  w:\n    hf: acme/does-not-exist\n`);
    const repo = await runCli(['lock'], p.dir, p.env({ HF_TOKEN: 'hf_valid' }));
    expect(repo.code, repo.stderr).toBe(3);
    expect(repo.stderr).toContain('hf:acme/does-not-exist');
    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nmodels:\n  w:\n    hf: ${id}\n    revision: no-such-branch\n`);
    const revision = await runCli(['lock'], p.dir, p.env());
    expect(revision.code, revision.stderr).toBe(3);
    expect(revision.stderr).toContain('revision "no-such-branch" not found');
    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nmodels:\n  w:\n    hf: ${id}\n    files: [missing.bin]\n`);
    const file = await runCli(['lock'], p.dir, p.env());
    expect(file.code, file.stderr).toBe(3);
    expect(file.stderr).toContain('"missing.bin"');
    await expect(readFile(join(p.dir, 'models.lock'))).rejects.toThrow();
  });

  it('a 429 is waited out for as long as Retry-After, or the RateLimit header, says', async () => {
    const id = repoName('limited');
    await hub.createRepo(id).commit({ files: [{ path: 'a.txt', content: 'a\n' }] });
    const p = await project(`  a:\n    hf: ${id}\n`);
    hub.rateLimit({ times: 1, resetSeconds: 1 });
    const started = Date.now();
    const result = await runCli(['install'], p.dir, p.env());
    expect(result.code, result.stderr).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(hub.requests.filter((r) => r.status === 429).length).toBe(1);

    // Without Retry-After, the RateLimit header's reset (t=) says how long to wait.
    const limited = await startHubServer({ fault: (req, attempt) => (req.path.includes('/revision/') && attempt === 1 ? { status: 429, headers: { RateLimit: '"api";r=0;t=4' } } : undefined) });
    try {
      await limited.createRepo('acme/r').commit({ files: [{ path: 'a.txt', content: 'a\n' }] });
      await writeFile(join(p.dir, 'models.yaml'), 'version: 1\nmodels:\n  r:\n    hf: acme/r\n');
      const begun = Date.now();
      const second = await runCli(['lock'], p.dir, p.env({ HF_ENDPOINT: limited.url }));
      expect(second.code, second.stderr).toBe(0);
      expect(Date.now() - begun).toBeGreaterThanOrEqual(4000);
    } finally {
      await limited.close();
    }
  });
});

describe('hf: integrity, reuse and updates', () => {
  it('the same bytes in two repos are fetched once; a Xet-backed repo is pinned by lfs.oid (the sha256), not the Xet hash', async () => {
    const xet = await startHubServer({ xet: true });
    try {
      const shared = randomish(300_000, 19);
      await xet.createRepo('acme/one').commit({ files: [{ path: 'w.bin', content: shared, lfs: true }] });
      await xet.createRepo('acme/two').commit({ files: [{ path: 'weights/w.bin', content: shared, lfs: true }, { path: 'x.bin', content: randomish(1000, 20), lfs: true }] });
      const p = await project('  one:\n    hf: acme/one\n  two:\n    hf: acme/two\n');
      const result = await runCli(['install'], p.dir, p.env({ HF_ENDPOINT: xet.url }));
      expect(result.code, result.stderr).toBe(0);
      expect(await readFile(join(p.dir, 'models.lock'), 'utf8')).toContain(`path: weights/w.bin, size: 300000, sha256: ${sha256(shared)}`);
      expect(sha256(await readFile(join(p.dir, 'models', 'two', 'weights', 'w.bin')))).toBe(sha256(shared));
      await xet.settled();
      expect(xet.fileHost.requests.filter((r) => r.path.endsWith(sha256(shared))).length).toBe(1);
    } finally {
      await xet.close();
    }
  });

  it('a large LFS file comes as concurrent ranges from the file host, none of them with the token', async () => {
    const id = repoName('ranged');
    const big = randomish(6 * 1024 * 1024 + 5, 21);
    await hub.createRepo(id, { private: true }).commit({ files: [{ path: 'big.bin', content: big, lfs: true }] });
    const token = 'hf_rangeToken';
    hub.addToken(token);
    hub.repo(id).granted.add(token);
    const p = await project(`  big:\n    hf: ${id}\n`);
    const result = await runCli(['install'], p.dir, p.env({ HF_TOKEN: token, MODELS_RANGE_SIZE: String(1024 * 1024) }));
    expect(result.code, result.stderr).toBe(0);
    expect(sha256(await readFile(join(p.dir, 'models', 'big', 'big.bin')))).toBe(sha256(big));
    await hub.settled();
    const ranged = hub.fileHost.requests.filter((r) => r.range !== undefined && r.range !== 'bytes=0-0');
    expect(ranged.length).toBeGreaterThan(3);
    expect(hub.fileHost.requests.every((r) => r.authorization === undefined)).toBe(true);
    // The Hub is asked for the redirect once; the ranges go to where it pointed.
    expect(resolveRequests().filter((r) => r.path.endsWith('/big.bin')).length).toBe(1);
  });

  it('a file host that refuses a remembered redirect target (an expired signature) sends the range back to the Hub', async () => {
    let refused = 0;
    const expiring = await startHubServer({ fileHost: { fault: ({ attempt }) => (attempt === 3 && ++refused === 1 ? { kind: 'status', status: 403 } : undefined) } });
    try {
      const id = 'acme/expiring';
      const big = randomish(6 * 1024 * 1024 + 5, 22);
      await expiring.createRepo(id).commit({ files: [{ path: 'big.bin', content: big, lfs: true }] });
      const p = await project(`  big:\n    hf: ${id}\n`);
      const result = await runCli(['install'], p.dir, p.env({ HF_ENDPOINT: expiring.url, MODELS_RANGE_SIZE: String(1024 * 1024), MODELS_CONCURRENCY: '1' }));
      expect(result.code, result.stderr).toBe(0);
      expect(sha256(await readFile(join(p.dir, 'models', 'big', 'big.bin')))).toBe(sha256(big));
      await expiring.settled();
      expect(refused).toBe(1);
      // The probe's redirect, then once more after the refusal.
      expect(expiring.requests.filter((r) => r.path.includes('/resolve/') && r.path.endsWith('/big.bin')).length).toBe(2);
    } finally {
      await expiring.close();
    }
  });

  it('a corrupted LFS body from the file host exits 6 and installs nothing', async () => {
    const corrupt = await startHubServer({ fileHost: { fault: () => ({ kind: 'corrupt' }) } });
    try {
      const id = 'acme/corrupt';
      await corrupt.createRepo(id).commit({ files: [{ path: 'config.json', content: config }, { path: 'w.bin', content: randomish(40_000, 16), lfs: true }] });
      const p = await project(`  c:\n    hf: ${id}\n`);
      const result = await runCli(['install'], p.dir, p.env({ HF_ENDPOINT: corrupt.url, MODELS_RETRIES: '3' }));
      expect(result.code, result.stderr).toBe(6);
      await expect(readFile(join(p.dir, 'models', 'c', 'config.json'))).rejects.toThrow();
    } finally {
      await corrupt.close();
    }
  });

  it('reuses a local Hugging Face cache (HF_HUB_CACHE): no download, nothing written there; a corrupt blob there is passed over', async () => {
    const id = repoName('cached');
    await whisperRepo(id);
    const p = await project(`  w:\n    hf: ${id}\n`);
    const hfCache = join(p.base, 'hf-hub');
    const folder = await hub.writeLocalCache(hfCache, id, 'main');
    const before = await snapshot(hfCache);
    const result = await runCli(['install', '--verbose'], p.dir, p.env());
    expect(result.code, result.stderr).toBe(0);
    expect(sha256(await readFile(join(p.dir, 'models', 'w', 'model.safetensors')))).toBe(sha256(weights));
    expect(await readFile(join(p.dir, 'models', 'w', 'config.json'), 'utf8')).toBe(config);
    await hub.settled();
    expect(resolveRequests()).toEqual([]);
    expect(hub.fileHost.requests).toEqual([]);
    expect(result.stderr).toContain('HF_HUB_CACHE');
    expect(await snapshot(hfCache)).toEqual(before);

    // A damaged blob in the local cache is not used: that one file comes from the Hub.
    const blob = join(folder, 'blobs', sha256(encoder));
    await rm(blob);
    await writeFile(blob, Buffer.alloc(encoder.length, 1));
    const fresh = join(p.base, 'cache-2');
    await rm(join(p.dir, 'models'), { recursive: true });
    hub.reset();
    const again = await runCli(['install', '--frozen'], p.dir, p.env({ MODELS_CACHE_DIR: fresh }));
    expect(again.code, again.stderr).toBe(0);
    expect(sha256(await readFile(join(p.dir, 'models', 'w', 'onnx', 'encoder_model.onnx')))).toBe(sha256(encoder));
    await hub.settled();
    expect(hub.fileHost.requests.map((r) => r.path.split('/').pop())).toEqual([sha256(encoder)]);
  });

  it('outdated: a commit pin is current with no request; a moved branch is outdated only when a selected file changed; update follows it', async () => {
    const id = repoName('moving');
    const repo = hub.createRepo(id);
    const c1 = await repo.commit({ files: [{ path: 'config.json', content: config }, { path: 'w.bin', content: weights, lfs: true }, { path: 'README.md', content: 'v1\n' }] });
    const p = await project(`  w:\n    hf: ${id}\n    exclude: [README.md]\n  pinned:\n    hf: ${id}\n    revision: ${c1}\n`);
    expect((await runCli(['install'], p.dir, p.env())).code).toBe(0);
    hub.reset();
    const current = await runCli(['outdated', '--json'], p.dir, p.env());
    expect(current.code, current.stderr).toBe(0);
    expect(hub.requests.filter((r) => r.path.includes('/revision/')).length).toBe(1); // the branch only

    // Only an unselected file changes: still current.
    await repo.commit({ files: [{ path: 'README.md', content: 'v2\n' }] });
    const unselected = await runCli(['outdated', '--json'], p.dir, p.env());
    expect(unselected.code, unselected.stdout).toBe(0);

    const newWeights = randomish(700_000, 17);
    const c3 = await repo.commit({ files: [{ path: 'w.bin', content: newWeights, lfs: true }] });
    hub.reset();
    const moved = await runCli(['outdated', '--json'], p.dir, p.env());
    expect(moved.code, moved.stdout).toBe(1);
    const rows = JSON.parse(moved.stdout).models as Array<{ name: string; status: string; detail?: string; latest?: { resolved: string } }>;
    expect(rows.find((r) => r.name === 'pinned')?.status).toBe('current');
    const w = rows.find((r) => r.name === 'w');
    expect(w).toMatchObject({ status: 'outdated', latest: { resolved: c3 } });
    expect(w?.detail).toContain(`main moved ${c1.slice(0, 7)} → ${c3.slice(0, 7)}`);
    expect(w?.detail).toContain('w.bin');
    // The unchanged git file was recognised from the store: not fetched again.
    expect(resolveRequests()).toEqual([]);

    hub.reset();
    const update = await runCli(['update', 'w'], p.dir, p.env());
    expect(update.code, update.stderr).toBe(0);
    expect(sha256(await readFile(join(p.dir, 'models', 'w', 'w.bin')))).toBe(sha256(newWeights));
    expect(sha256(await readFile(join(p.dir, 'models', 'pinned', 'w.bin')))).toBe(sha256(weights));
    await hub.settled();
    // Only the file whose sha256 changed was downloaded.
    expect(resolveRequests().map((r) => r.path.split('/').pop())).toEqual(['w.bin']);
    expect(hub.fileHost.requests.map((r) => r.path.split('/').pop())).toEqual([sha256(newWeights)]);
    expect(await readFile(join(p.dir, 'models.lock'), 'utf8')).toContain(`commit: ${c3}`);
  });
});

describe('hf: commands and interruptions', () => {
  it('models add hf:ORG/REPO@REV --files, then info shows repo, revision and commit; --offline installs from HF_HUB_CACHE alone', async () => {
    const id = repoName('added');
    const commit = await whisperRepo(id);
    hub.repo(id).tag('v1', commit);
    const p = await project('');
    await writeFile(join(p.dir, 'models.yaml'), 'version: 1\n# our models\nmodels: {}\n');
    const added = await runCli(['add', `hf:${id}@v1`, '--files', '*.json', 'onnx/*.onnx'], p.dir, p.env());
    expect(added.code, added.stderr).toBe(0);
    const yaml = await readFile(join(p.dir, 'models.yaml'), 'utf8');
    expect(yaml).toContain('# our models');
    expect(yaml).toContain(`hf: ${id}`);
    const name = id.split('/')[1] as string;
    const installed = [...(await snapshot(join(p.dir, 'models', name))).keys()].filter((k) => !k.endsWith('/')).sort();
    expect(installed).toEqual(['config.json', 'onnx/decoder_model.onnx', 'onnx/encoder_model.onnx', 'tokenizer.json']);

    const info = await runCli(['info', name, '--json'], p.dir, p.env());
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ model: `hf:${id}`, version: 'v1', resolved: commit, metadata: { repo: id, revision: 'v1', commit, type: 'model' }, install: { status: 'installed' } });
    const text = await runCli(['info', name], p.dir, p.env());
    expect(text.stdout).toContain(commit);

    // A machine without our cache but with the Hub's own cache: --offline is enough.
    await hub.writeLocalCache(join(p.base, 'hf-hub'), id, 'v1');
    await rm(join(p.dir, 'models'), { recursive: true });
    hub.reset();
    const offline = await runCli(['install', '--frozen', '--offline'], p.dir, p.env({ MODELS_CACHE_DIR: join(p.base, 'other-cache') }));
    expect(offline.code, offline.stderr).toBe(0);
    expect(hub.requests).toEqual([]);
    // Without it, --offline says what is missing (exit 5).
    await rm(join(p.dir, 'models'), { recursive: true });
    const none = await runCli(['install', '--frozen', '--offline'], p.dir, p.env({ MODELS_CACHE_DIR: join(p.base, 'third-cache'), HF_HUB_CACHE: join(p.base, 'empty') }));
    expect(none.code, none.stderr).toBe(5);
    expect(none.stderr).toContain('--offline');
  });

  it('doctor checks the Hub and the token (whoami), and asks no XPRIM registry for an hf:-only project', async () => {
    const id = repoName('doctor');
    await hub.createRepo(id).commit({ files: [{ path: 'a.txt', content: 'a\n' }] });
    hub.addToken('hf_doctorToken');
    const p = await project(`  a:\n    hf: ${id}\n`);
    const hubCheck = async (env: NodeJS.ProcessEnv) => {
      const result = await runCli(['doctor', '--json'], p.dir, env);
      expect(result.stdout + result.stderr).not.toContain('hf_doctorToken');
      const checks = JSON.parse(result.stdout).checks as Array<{ area: string; subject: string; status: string; message: string }>;
      expect(checks.filter((c) => c.area === 'registry').map((c) => c.subject)).toEqual([hub.url]);
      return checks.find((c) => c.subject === hub.url);
    };
    expect(await hubCheck(p.env())).toMatchObject({ status: 'ok', message: expect.stringContaining('no token') });
    expect(await hubCheck(p.env({ HF_TOKEN: 'hf_doctorToken' }))).toMatchObject({ status: 'ok', message: expect.stringContaining('the token from HF_TOKEN is valid') });
    expect(await hubCheck(p.env({ HF_TOKEN: 'hf_wrong' }))).toMatchObject({ status: 'fail', message: expect.stringContaining('refuses the token from HF_TOKEN') });
    expect(hub.requests.every((r) => r.path === '/api/whoami-v2')).toBe(true);
  });

  it('kill -9 mid-file resumes with Range, fetching little more than what was missing', async () => {
    const slow = await startHubServer({ fileHost: { bytesPerSecond: 8 * 1024 * 1024 } });
    try {
      const size = 24 * 1024 * 1024;
      const big = randomish(size, 18);
      await slow.createRepo('acme/big').commit({ files: [{ path: 'big.bin', content: big, lfs: true }] });
      const p = await project('  big:\n    hf: acme/big\n');
      const env = p.env({ HF_ENDPOINT: slow.url });
      expect((await runCli(['lock'], p.dir, env)).code).toBe(0);
      const { child, done } = startCli(['install', '--frozen'], p.dir, env);
      for (let i = 0; i < 200; i++) {
        await sleep(50);
        if ((await journalProgress(join(p.cache, 'v1', 'partial'))) >= 4 * 1024 * 1024) break;
      }
      child.kill('SIGKILL');
      await done;
      await slow.settled();
      expect(slow.fileHost.requests.reduce((s, r) => s + r.bytesSent, 0)).toBeLessThan(size);
      slow.reset();
      const resumed = await runCli(['install', '--frozen'], p.dir, env);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(sha256(await readFile(join(p.dir, 'models', 'big', 'big.bin')))).toBe(sha256(big));
      await slow.settled();
      expect(slow.fileHost.requests[0]?.range).toMatch(/^bytes=\d+-$/);
      expect(slow.fileHost.requests.reduce((s, r) => s + r.bytesSent, 0)).toBeLessThan(size - 3 * 1024 * 1024);
    } finally {
      await slow.close();
    }
  }, 60_000);
});

/** The most bytes any in-flight chunk of the cache's partial downloads has recorded. */
async function journalProgress(partial: string): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  const dirs = await readdir(partial).catch(() => [] as string[]);
  const texts = await Promise.all(dirs.map((d) => readFile(join(partial, d, 'journal'), 'utf8').catch(() => '')));
  let best = 0;
  for (const m of texts.join('\n').matchAll(/prog\t\d+\t(\d+)/g)) best = Math.max(best, Number(m[1]));
  return best;
}
