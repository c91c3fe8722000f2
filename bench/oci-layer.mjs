/**
 * The OCI benchmark (issue 14): one 1 GiB file published as a one-layer ORAS artifact into a local
 * Debian docker-registry (distribution 2.8, filesystem storage, loopback only), then a cold
 * `models install --frozen` of it against what a user would script by hand: `curl` of the blob URL
 * + `openssl dgst -sha256`. Publishing is timed too (into an empty registry, then the no-op re-publish).
 * Skipped, with a note, where the docker-registry binary is missing.
 */
/* global fetch */
import { spawn } from 'node:child_process';
import { freePort, writeRandomFile } from './support.mjs';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const MiB = 1024 * 1024;
const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

function which(name) {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/usr/sbin'])) if (dir && existsSync(join(dir, name))) return join(dir, name);
  return undefined;
}


/** docker-registry on 127.0.0.1 with its storage in `storage` (never its default config, which listens everywhere). */
async function startRegistry(bin, dir, storage) {
  const port = await freePort();
  const config = join(dir, 'registry.yml');
  await writeFile(config, ['version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true', 'storage:', '  filesystem:', `    rootdirectory: ${JSON.stringify(storage)}`, 'http:', `  addr: 127.0.0.1:${port}`, '  secret: xprim-models-bench', ''].join('\n'));
  const child = spawn(bin, ['serve', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}`);
    const up = await fetch(`${url}/v2/`).then((r) => r.status === 200, () => false);
    if (up) break;
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer ${url}/v2/`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { host: `127.0.0.1:${port}`, url, close: () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); }) };
}

async function prepare(dir, size, log) {
  const file = join(dir, 'src', 'model.bin');
  const marker = join(dir, 'ready.json');
  const want = JSON.stringify({ size, version: 1 });
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === want) return file;
  log(`building the OCI dataset in ${dir}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeRandomFile(file, size);
  await writeFile(marker, want);
  return file;
}

/** ctx: { work, size, runs, cli, models, measure, sideBySide, mustExec, cleanEnv, log, settle }. */
export async function benchOciLayer(ctx) {
  const { work, size, log, models, measure, mustExec, cleanEnv, cli } = ctx;
  const bin = which('docker-registry') ?? which('registry');
  if (!bin) {
    log('note: docker-registry not found (apt-get install docker-registry): the OCI row is skipped');
    return { na: 'docker-registry not found' };
  }
  const dir = join(work, `oci-${size}`);
  const file = await prepare(dir, size, log);
  const storage = join(dir, 'storage');
  await rm(storage, { recursive: true, force: true });
  const registry = await startRegistry(bin, dir, storage);
  const target = `oci://${registry.host}/bench/layer:v1`;
  const proj = join(dir, 'project');
  const cache = join(dir, 'cache');
  const dest = join(dir, 'curl');
  try {
    log('\nOCI: publish into an empty registry, then again');
    const publish = await measure('publish --to oci:// (empty registry)', { runs: 1, run: () => models(['publish', join(dir, 'src'), '--to', target, '--quiet']) });
    const republish = await measure('publish --to oci:// (again: nothing to upload)', { run: () => models(['publish', join(dir, 'src'), '--to', target, '--quiet']) });
    await rm(proj, { recursive: true, force: true });
    await mkdir(proj, { recursive: true });
    await writeFile(join(proj, 'models.yaml'), `version: 1\nmodels:\n  layer:\n    oci: ${registry.host}/bench/layer:v1\n`);
    await mustExec(process.execPath, [cli, 'lock', '--quiet'], { cwd: proj, env: cleanEnv({ MODELS_CACHE_DIR: cache }) });
    const lock = await readFile(join(proj, 'models.lock'), 'utf8');
    const hex = /sha256: ([0-9a-f]{64})/.exec(lock)?.[1];
    log('OCI: cold install against curl + openssl');
    const blob = `${registry.url}/v2/bench/layer/blobs/sha256:${hex}`;
    const { cold, curl } = await ctx.sideBySide({
      cold: {
        label: 'cold install (1 OCI layer)',
        prepare: async () => {
          await rm(cache, { recursive: true, force: true });
          await rm(join(proj, 'models'), { recursive: true, force: true });
          await ctx.settle(storage);
        },
        run: () => models(['install', '--frozen', '--quiet'], { cwd: proj, env: cleanEnv({ MODELS_CACHE_DIR: cache }) }),
      },
      curl: {
        label: 'curl + openssl dgst (1 OCI layer)',
        prepare: async () => {
          await rm(dest, { recursive: true, force: true });
          await ctx.settle(storage);
        },
        run: () => ctx.timedShell(`mkdir -p ${q(dest)} && curl -sS --fail --noproxy '*' -o ${q(join(dest, 'model.bin'))} ${q(blob)} && openssl dgst -sha256 ${q(join(dest, 'model.bin'))} > /dev/null`),
      },
    });
    await rm(dest, { recursive: true, force: true });
    return { publish, republish, cold, curl, file };
  } finally {
    await registry.close();
    await rm(cache, { recursive: true, force: true });
    await rm(storage, { recursive: true, force: true });
  }
}

export function ociLayerTable(results, size) {
  const gib = `${(size / 1024 / MiB).toFixed(size >= 1024 * MiB ? 0 : 2)} GiB`;
  if (results.na) return `| OCI: ${gib} layer from a local docker-registry | n/a (${results.na}) |\n|---|---|`;
  const s = (m) => `${m.seconds.toFixed(2)} s${m.rssMB !== undefined ? `, ${Math.round(m.rssMB)} MB RSS` : ''}`;
  const rate = (m) => `${(size / MiB / m.seconds).toFixed(0)} MiB/s`;
  return [
    `| OCI: ${gib} layer from a local docker-registry (distribution 2.8) | time | throughput | vs curl + openssl | target |`,
    '|---|---|---|---|---|',
    `| \`models install --frozen\`, cold cache | ${s(results.cold)} | ${rate(results.cold)} | ${(results.cold.seconds / results.curl.seconds).toFixed(2)}× | ≤ 1.0×${results.cold.seconds <= results.curl.seconds ? ' ✓' : ' ✗'} |`,
    `| \`curl\` the blob URL + \`openssl dgst -sha256\` | ${s(results.curl)} | ${rate(results.curl)} | 1× | |`,
    `| \`models publish --to oci://\`, empty registry | ${s(results.publish)} | ${rate(results.publish)} | | |`,
    `| \`models publish --to oci://\` again (HEADs only) | ${s(results.republish)} | | | |`,
  ].join('\n');
}
