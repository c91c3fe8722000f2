/**
 * `url:` sources end to end: the CLI as a child process against a real static HTTP server (Range,
 * ETag, Last-Modified, injected faults), archives built here, kill -9 and resume counting bytes.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { mkdir, readFile, rm, writeFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { type RegistryServer, startRegistryServer, type ServerOptions } from './support/registry-server.js';
import { cleanTemps, cliEnv, cliEnv as robustEnv, randomish, runCli, sha256, sleep, startCli, tempDir } from './support/robustness.js';
import { patchBytes, tarBuffer, zipBuffer } from './support/archives.js';
import { gzipSync } from 'node:zlib';

const servers: RegistryServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(cleanTemps);

async function serve(root: string, options: Partial<ServerOptions> = {}): Promise<RegistryServer> {
  const server = await startRegistryServer({ root, ...options });
  servers.push(server);
  return server;
}

/** A folder served over HTTP holding `files`, and a project folder beside it. */
async function setup(files: Record<string, Buffer>, options: Partial<ServerOptions> = {}) {
  const base = await tempDir('xprim-url-');
  const site = join(base, 'site');
  await mkdir(site, { recursive: true });
  for (const [name, data] of Object.entries(files)) await writeFile(join(site, name), data);
  const server = await serve(site, options);
  const dir = join(base, 'project');
  await mkdir(dir);
  return { base, site, server, dir, cache: join(base, 'cache') };
}

async function writeYaml(dir: string, body: string): Promise<void> {
  await writeFile(join(dir, 'models.yaml'), `version: 1\nmodels:\n${body}`);
}

describe('url: one file', () => {
  it('pins on first use (and says so), installs byte-exact, repeats with zero requests, and never sends MODELS_TOKEN', async () => {
    const data = randomish(3 * 1024 * 1024 + 17, 1);
    const { server, dir, cache } = await setup({ 'silero_vad.onnx': data });
    // A registry on the same origin gets the token; the url: entry on that origin must not.
    await writeFile(join(dir, 'models.yaml'), `version: 1\nregistry: ${server.url}/registry\nmodels:\n  vad:\n    url: ${server.url}/silero_vad.onnx\n`);
    const env = cliEnv(cache, { MODELS_TOKEN: 'secret-token-123' });
    const first = await runCli(['install'], dir, env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`pinned on first use: sha256 ${sha256(data)}`);
    expect(sha256(await readFile(join(dir, 'models', 'vad', 'silero_vad.onnx')))).toBe(sha256(data));
    const lock = await readFile(join(dir, 'models.lock'), 'utf8');
    expect(lock).toContain('kind: url');
    expect(lock).toContain(`sha256: ${sha256(data)}`);
    expect(lock).toMatch(/etag: '"/);
    expect(lock).not.toContain('secret-token-123');
    expect(server.requests.every((r) => r.authorization === undefined)).toBe(true);
    // Pinned once, fetched once: the lock-time download is the install's cache hit.
    expect(server.count('/silero_vad.onnx')).toBe(1);

    server.reset();
    const again = await runCli(['install', '--frozen'], dir, env);
    expect(again.code, again.stderr).toBe(0);
    expect(server.requests).toEqual([]);

    const verify = await runCli(['verify'], dir, env);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });

  it('a fresh machine installs --frozen from the lock alone; `file:` names the file; --offline without the cache exits 5', async () => {
    const data = randomish(200_000, 2);
    const { server, dir, cache, base } = await setup({ 'model.bin': data });
    await writeYaml(dir, `  m:\n    url: ${server.url}/model.bin?token=abc\n    file: weights/m.bin\n    sha256: ${sha256(data)}\n`);
    expect((await runCli(['lock'], dir, cliEnv(cache))).code).toBe(0);
    const fresh = join(base, 'cache2');
    const offline = await runCli(['install', '--frozen', '--offline'], dir, cliEnv(fresh));
    expect(offline.code).toBe(5);
    expect(offline.stderr).toContain('--offline');
    server.reset();
    const result = await runCli(['install', '--frozen'], dir, cliEnv(fresh));
    expect(result.code, result.stderr).toBe(0);
    expect(sha256(await readFile(join(dir, 'models', 'm', 'weights', 'm.bin')))).toBe(sha256(data));
    expect(server.requests.map((r) => r.path)).toEqual(['/model.bin']);
  });

  it('a folder in MODELS_MIRRORS holding data/<sha256> serves a url: file (verified by its hash); the URL is never asked', async () => {
    const data = randomish(300_000, 13);
    const { server, dir, cache, base } = await setup({ 'w.bin': data });
    await writeYaml(dir, `  w:\n    url: ${server.url}/w.bin\n    sha256: ${sha256(data)}\n`);
    expect((await runCli(['lock'], dir, cliEnv(cache))).code).toBe(0);
    const mirror = join(base, 'mirror');
    await mkdir(join(mirror, 'data'), { recursive: true });
    await writeFile(join(mirror, 'data', sha256(data)), data);
    server.reset();
    const result = await runCli(['install', '--frozen', '--offline'], dir, cliEnv(join(base, 'fresh'), { MODELS_MIRRORS: `file://${mirror}` }));
    expect(result.code, result.stderr).toBe(0);
    expect(sha256(await readFile(join(dir, 'models', 'w', 'w.bin')))).toBe(sha256(data));
    expect(server.requests).toEqual([]);
  });

  it('a sha256 in models.yaml that the server does not serve: exit 6 at lock, nothing written', async () => {
    const { server, dir, cache } = await setup({ 'a.onnx': randomish(1000, 3) });
    await writeYaml(dir, `  a:\n    url: ${server.url}/a.onnx\n    sha256: ${'ab'.repeat(32)}\n`);
    const result = await runCli(['install'], dir, cliEnv(cache));
    expect(result.code).toBe(6);
    expect(result.stderr).toContain(`${server.url}/a.onnx serves sha256`);
    expect(result.stderr).toContain('models.yaml says abab');
    await expect(readFile(join(dir, 'models.lock'))).rejects.toThrow();
  });

  it('--frozen with no lock exits 8; a 404 exits 3; a 401 exits 9; no token is ever sent', async () => {
    const { server, dir, cache } = await setup({ 'a.onnx': randomish(1000, 4) }, { fault: ({ path }) => (path === '/private.onnx' ? { kind: 'status', status: 401 } : undefined) });
    await writeYaml(dir, `  a:\n    url: ${server.url}/missing.onnx\n`);
    expect((await runCli(['install', '--frozen'], dir, cliEnv(cache))).code).toBe(8);
    const missing = await runCli(['install'], dir, cliEnv(cache));
    expect(missing.code, missing.stderr).toBe(3);
    expect(missing.stderr).toContain('/missing.onnx');
    await writeYaml(dir, `  a:\n    url: ${server.url}/private.onnx\n`);
    const refused = await runCli(['install'], dir, cliEnv(cache, { MODELS_TOKEN: 'tok' }));
    expect(refused.code, refused.stderr).toBe(9);
    expect(refused.stderr).toContain('HTTP 401');
    expect(server.requests.every((r) => r.authorization === undefined)).toBe(true);
  });

  it('survives 503, resets and a corrupted body: retried, resumed with Range + If-Range, verified', async () => {
    const data = randomish(2 * 1024 * 1024, 5);
    const faults: ServerOptions['fault'] = ({ attempt }) =>
      attempt === 2 ? { kind: 'status', status: 503, retryAfter: '0' } : attempt === 3 ? { kind: 'reset', afterBytes: 700_000 } : attempt === 4 ? { kind: 'corrupt' } : undefined;
    const { server, dir, cache, base } = await setup({ 'f.bin': data }, { fault: faults });
    await writeYaml(dir, `  f:\n    url: ${server.url}/f.bin\n    sha256: ${sha256(data)}\n`);
    // Lock on one cache (attempt 1 serves it whole), then install on a fresh one: attempts 2-5.
    expect((await runCli(['lock'], dir, cliEnv(cache))).code).toBe(0);
    const result = await runCli(['install', '--frozen'], dir, cliEnv(join(base, 'fresh')));
    expect(result.code, result.stderr).toBe(0);
    expect(sha256(await readFile(join(dir, 'models', 'f', 'f.bin')))).toBe(sha256(data));
    // The reset kept what had arrived: the next attempt asks for the rest only, guarded by If-Range.
    expect(server.requests.some((r) => /^bytes=[1-9]\d*-$/.test(r.range ?? '') && r.ifRange !== undefined)).toBe(true);
    expect(server.requests.map((r) => r.status)).toEqual([200, 503, 200, 206, 200]);
  });

  it('resumes after kill -9 with Range, fetching little more than what was missing', async () => {
    const size = 24 * 1024 * 1024;
    const data = randomish(size, 6);
    const { server, dir, base } = await setup({ 'big.bin': data }, { bytesPerSecond: 8 * 1024 * 1024 });
    await writeYaml(dir, `  big:\n    url: ${server.url}/big.bin\n    sha256: ${sha256(data)}\n`);
    const cache = join(base, 'c');
    expect((await runCli(['lock'], dir, cliEnv(join(base, 'lockcache')))).code).toBe(0);
    server.reset();
    const { child, done } = startCli(['install', '--frozen'], dir, cliEnv(cache));
    // Kill once the journal has recorded a few MiB of progress.
    const journal = join(cache, 'v1', 'partial');
    for (let i = 0; i < 200; i++) {
      await sleep(50);
      const text = await readJournal(journal);
      const progress = /prog\t\d+\t(\d+)/g;
      let best = 0;
      for (const m of text.matchAll(progress)) best = Math.max(best, Number(m[1]));
      if (best >= 4 * 1024 * 1024) break;
    }
    child.kill('SIGKILL');
    await done;
    await server.settled();
    const firstBytes = server.requests.reduce((s, r) => s + r.bytesSent, 0);
    expect(firstBytes).toBeLessThan(size);
    server.reset();
    const resumed = await runCli(['install', '--frozen'], dir, cliEnv(cache));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(sha256(await readFile(join(dir, 'models', 'big', 'big.bin')))).toBe(sha256(data));
    const secondBytes = server.requests.reduce((s, r) => s + r.bytesSent, 0);
    expect(server.requests[0]?.range).toMatch(/^bytes=\d+-$/);
    expect(secondBytes).toBeLessThan(size - 3 * 1024 * 1024);
  }, 60_000);

  it('outdated: current while the server serves the same bytes, changed (exit 1) once it does not', async () => {
    const { server, dir, cache, site } = await setup({ 'm.onnx': randomish(5000, 7) });
    await writeYaml(dir, `  m:\n    url: ${server.url}/m.onnx\n`);
    expect((await runCli(['lock'], dir, cliEnv(cache))).code).toBe(0);
    const current = await runCli(['outdated', '--json'], dir, cliEnv(cache));
    expect(current.code, current.stderr).toBe(0);
    expect(JSON.parse(current.stdout).models[0]).toMatchObject({ name: 'm', status: 'current' });
    await writeFile(join(site, 'm.onnx'), randomish(5001, 8));
    await utimes(join(site, 'm.onnx'), new Date(), new Date(Date.now() + 5000));
    const changed = await runCli(['outdated', '--json'], dir, cliEnv(cache));
    expect(changed.code).toBe(1);
    expect(JSON.parse(changed.stdout).models[0]).toMatchObject({ name: 'm', status: 'changed' });
    expect(server.requests.filter((r) => r.method === 'HEAD').length).toBe(2);
  });
});

async function readJournal(partial: string): Promise<string> {
  const { readdir } = await import('node:fs/promises');
  const dirs = await readdir(partial).catch(() => [] as string[]);
  const texts = await Promise.all(dirs.map((d) => readFile(join(partial, d, 'journal'), 'utf8').catch(() => '')));
  return texts.join('\n');
}

describe('url: archives', () => {
  const files = { 'am/final.mdl': randomish(300_000, 9), 'conf/model.conf': Buffer.from('--sample-frequency=16000\n'), 'README': Buffer.from('vosk small\n') };
  const tgz = gzipSync(tarBuffer(Object.entries(files).map(([path, data]) => ({ name: `vosk-model-small/${path}`, data }))));

  it('tar.gz with strip: 1: the lock lists every file; verify is offline; a deleted file is repaired from the stored archive with no request', async () => {
    const { server, dir, cache } = await setup({ 'vosk-model-small-en-us-0.15.tar.gz': tgz });
    await writeYaml(dir, `  vosk:\n    url: ${server.url}/vosk-model-small-en-us-0.15.tar.gz\n    extract: auto\n    strip: 1\n`);
    const result = await runCli(['install'], dir, cliEnv(cache));
    expect(result.code, result.stderr).toBe(0);
    for (const [path, data] of Object.entries(files)) expect(sha256(await readFile(join(dir, 'models', 'vosk', path)))).toBe(sha256(data));
    const lock = await readFile(join(dir, 'models.lock'), 'utf8');
    expect(lock).toContain('extract: tar.gz');
    expect(lock).toContain(`path: am/final.mdl, size: 300000, sha256: ${sha256(files['am/final.mdl'])}`);
    await server.close();
    const verify = await runCli(['verify'], dir, cliEnv(cache));
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    await rm(join(dir, 'models', 'vosk', 'am', 'final.mdl'));
    // The extracted files' own store copies are gone too: only the archive remains to rebuild from.
    await rm(join(cache, 'v1', 'files', sha256(files['am/final.mdl']).slice(0, 2), sha256(files['am/final.mdl'])), { force: true });
    const repair = await runCli(['install', '--frozen'], dir, cliEnv(cache));
    expect(repair.code, repair.stderr).toBe(0);
    expect(sha256(await readFile(join(dir, 'models', 'vosk', 'am', 'final.mdl')))).toBe(sha256(files['am/final.mdl']));
  });

  it('models mirror writes the objects of url: files and archives; an air-gapped machine installs them offline from it', async () => {
    const single = randomish(70_000, 14);
    const { server, dir, cache, base } = await setup({ 'vosk.tar.gz': tgz, 'one.bin': single });
    await writeYaml(dir, `  vosk:\n    url: ${server.url}/vosk.tar.gz\n    extract: tar.gz\n    strip: 1\n  one:\n    url: ${server.url}/one.bin\n`);
    expect((await runCli(['lock'], dir, cliEnv(cache))).code).toBe(0);
    const out = join(base, 'usb');
    const mirrored = await runCli(['mirror', '--out', out], dir, cliEnv(cache));
    expect(mirrored.code, mirrored.stderr).toBe(0);
    expect(sha256(await readFile(join(out, 'data', sha256(single))))).toBe(sha256(single));
    expect(sha256(await readFile(join(out, 'data', sha256(tgz))))).toBe(sha256(tgz));
    await server.close();
    const offline = await runCli(['install', '--frozen', '--offline'], dir, cliEnv(join(base, 'airgapped'), { MODELS_MIRRORS: `file://${out}` }));
    expect(offline.code, offline.stderr).toBe(0);
    expect(sha256(await readFile(join(dir, 'models', 'vosk', 'am', 'final.mdl')))).toBe(sha256(files['am/final.mdl']));
    expect(sha256(await readFile(join(dir, 'models', 'one', 'one.bin')))).toBe(sha256(single));
  });

  it('zip: installs its files; a hostile zip (an entry with ..) exits 6 and promotes nothing', async () => {
    const good = await zipBuffer([{ name: 'model.onnx', data: randomish(10_000, 10) }, { name: 'vocab/tokens.txt', data: Buffer.from('a\nb\n') }]);
    const evil = patchBytes(await zipBuffer([{ name: 'ok.txt', data: Buffer.from('ok') }, { name: 'aa/aa/escape.txt', data: Buffer.from('pwned') }]), 'aa/aa/escape.txt', '../../escape.txt');
    const { server, dir, cache, base } = await setup({ 'good.zip': good, 'evil.zip': evil });
    await writeYaml(dir, `  good:\n    url: ${server.url}/good.zip\n    extract: zip\n`);
    const ok = await runCli(['install'], dir, cliEnv(cache));
    expect(ok.code, ok.stderr).toBe(0);
    expect(await readFile(join(dir, 'models', 'good', 'vocab', 'tokens.txt'), 'utf8')).toBe('a\nb\n');
    await writeYaml(dir, `  good:\n    url: ${server.url}/good.zip\n    extract: zip\n  evil:\n    url: ${server.url}/evil.zip\n    extract: zip\n`);
    const bad = await runCli(['install'], dir, cliEnv(cache));
    expect(bad.code).toBe(6);
    expect(bad.stderr).toContain('escape.txt');
    await expect(readFile(join(base, 'escape.txt'))).rejects.toThrow();
    await expect(readFile(join(dir, 'models', 'evil', 'ok.txt'))).rejects.toThrow();
    expect(await readFile(join(dir, 'models', 'good', 'model.onnx'))).toHaveLength(10_000);
  });
});

describe('url: one large file', () => {
  it('asks a redirect that leaves the origin once per file, and one within the origin again for every range', async () => {
    const size = 6 * 1024 * 1024 + 7;
    const data = randomish(size, 13);
    const { server: files, site, dir, base } = await setup({ 'large.bin': data });
    const front = await serve(site, {
      fault: ({ path }) => (path === '/away.bin' ? { kind: 'redirect', location: `${files.url}/large.bin` } : path === '/here.bin' ? { kind: 'redirect', location: '/large.bin' } : undefined),
    });
    const env = (cache: string) => robustEnv(cache, { MODELS_RANGE_SIZE: String(1024 * 1024) });
    for (const name of ['away', 'here']) {
      await writeYaml(dir, `  large:\n    url: ${front.url}/${name}.bin\n    sha256: ${sha256(data)}\n`);
      expect((await runCli(['lock'], dir, env(join(base, `lockcache-${name}`)))).code).toBe(0);
      front.reset();
      const result = await runCli(['install', '--frozen'], dir, env(join(base, `cache-${name}`)));
      expect(result.code, result.stderr).toBe(0);
      expect(sha256(await readFile(join(dir, 'models', 'large', `${name}.bin`)))).toBe(sha256(data));
      await front.settled();
      const asked = front.requests.filter((r) => r.path === `/${name}.bin` && r.range !== undefined && r.range !== 'bytes=0-0').length;
      // Seven ranged parts of 1 MiB: none asked the front again after another origin; each did within it.
      expect(asked, name).toBe(name === 'away' ? 0 : Math.ceil(size / (1024 * 1024)));
    }
  });

  it('is fetched as concurrent ranges when the server serves them, one stream when it does not; a kill -9 resumes the parts', async () => {
    const size = 24 * 1024 * 1024 + 12345; // with MODELS_RANGE_SIZE=4 MiB: six parts of ~4 MiB
    const data = randomish(size, 12);
    const { server, dir, base, site } = await setup({ 'large.bin': data }, { bytesPerSecond: 16 * 1024 * 1024 });
    const cliEnv = (cache: string) => robustEnv(cache, { MODELS_RANGE_SIZE: String(4 * 1024 * 1024) });
    await writeYaml(dir, `  large:\n    url: ${server.url}/large.bin\n    sha256: ${sha256(data)}\n`);
    expect((await runCli(['lock'], dir, cliEnv(join(base, 'lockcache')))).code).toBe(0);
    server.reset();
    const cache = join(base, 'c');
    const { child, done } = startCli(['install', '--frozen'], dir, cliEnv(cache));
    // Kill once the journal shows three parts under way (each records its progress every MiB).
    for (let i = 0; i < 600; i++) {
      await sleep(50);
      const parts = new Set([...(await readJournal(join(cache, 'v1', 'partial'))).matchAll(/prog\t(\d+)\t/g)].map((m) => m[1]));
      if (parts.size >= 3) break;
    }
    child.kill('SIGKILL');
    await done;
    await server.settled();
    const ranged = server.requests.filter((r) => r.range && r.range !== 'bytes=0-0');
    // Several parts were in flight at once: distinct ranges, each with an end.
    expect(new Set(ranged.map((r) => r.range)).size).toBeGreaterThanOrEqual(3);
    expect(ranged.every((r) => /^bytes=\d+-\d+$/.test(r.range ?? ''))).toBe(true);
    // What the journal says the killed run kept, part by part.
    const kept = new Map<string, number>();
    for (const m of (await readJournal(join(cache, 'v1', 'partial'))).matchAll(/prog\t(\d+)\t(\d+)\t/g)) kept.set(m[1] as string, Math.max(kept.get(m[1] as string) ?? 0, Number(m[2])));
    const keptBytes = [...kept.values()].reduce((a, b) => a + b, 0);
    expect(keptBytes).toBeGreaterThan(0);
    server.reset();
    const resumed = await runCli(['install', '--frozen'], dir, cliEnv(cache));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(sha256(await readFile(join(dir, 'models', 'large', 'large.bin')))).toBe(sha256(data));
    const secondBytes = server.requests.reduce((s, r) => s + r.bytesSent, 0);
    // What the first run kept was not fetched again: its parts resume mid-range, with If-Range.
    expect(secondBytes).toBeLessThanOrEqual(size - keptBytes + 1024 * 1024);
    expect(server.requests.some((r) => r.ifRange !== undefined && /^bytes=\d+-\d+$/.test(r.range ?? ''))).toBe(true);

    // A server without ranges: one stream, byte-exact.
    const plain = await serve(site, { ranges: false });
    await writeYaml(dir, `  large:\n    url: ${plain.url}/large.bin\n    sha256: ${sha256(data)}\n`);
    const once = await runCli(['install', '--frozen', '--no-cache'], dir, cliEnv(join(base, 'c2')));
    expect(once.code).toBe(8); // the URL changed: the lock is stale
    expect((await runCli(['lock'], dir, cliEnv(join(base, 'c3')))).code).toBe(0);
    plain.reset();
    const single = await runCli(['install', '--frozen'], dir, cliEnv(join(base, 'c4')));
    expect(single.code, single.stderr).toBe(0);
    expect(plain.requests.filter((r) => r.path === '/large.bin').map((r) => r.status)).toEqual([200, 200]);
  }, 120_000);
});
