/**
 * The Hugging Face Hub benchmark (issue 13): one LFS file of --size (1 GiB by default) in a repo of
 * the stand-in Hub (test/support/hub-server.ts, in the bench process: the API, and resolve with a 302
 * to the bench's static server, nginx when installed, standing in for the Hub's CDN). Cold
 * `models install --frozen` of an hf: entry (an empty cache and destination; the lock made
 * beforehand, untimed) against what a user would script by hand: `curl -L` of the resolve URL, then
 * `openssl dgst -sha256`.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeRandomFile } from './support.mjs';

const MiB = 1024 * 1024;
const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;


async function dataset(dir, size, log) {
  const file = join(dir, 'model.safetensors');
  const marker = join(dir, 'ready.json');
  const want = JSON.stringify({ size, version: 1 });
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === want) return file;
  log(`building the hub dataset in ${dir}`);
  await rm(dir, { recursive: true, force: true });
  await writeRandomFile(file, size);
  await writeFile(marker, want);
  return file;
}

/** The stand-in Hub is TypeScript that tsc does not emit (tests run from source): esbuild transpiles it. */
async function startHub(repo, work, lfsHost) {
  const modulePath = join(work, 'hub-server.mjs');
  const { build } = await import('esbuild');
  await build({ entryPoints: [join(repo, 'test', 'support', 'hub-server.ts')], outfile: modulePath, bundle: true, packages: 'external', platform: 'node', format: 'esm', logLevel: 'warning' });
  const { startHubServer } = await import(modulePath);
  return startHubServer(lfsHost ? { lfsHost } : {});
}

/**
 * ctx: { repo, work, size, runs, cli, models, measure, sideBySide, mustExec, cleanEnv, startServer, log, sh, settle }
 * from bench/run.mjs. The LFS bytes come from the bench's static server (nginx when installed), as the
 * Hub's come from a CDN: a node:http file host on the same two cores would mostly measure itself.
 */
export async function benchHub(ctx) {
  const { work, size, models, mustExec, cleanEnv, log } = ctx;
  const dir = join(work, 'hub');
  const file = await dataset(join(dir, 'data'), size, log);
  const lfsRoot = join(dir, 'lfs-host');
  await rm(lfsRoot, { recursive: true, force: true });
  await mkdir(lfsRoot, { recursive: true });
  const lfsServer = await ctx.startServer(lfsRoot);
  const hub = await startHub(ctx.repo, work, { url: lfsServer.url, root: lfsRoot }).catch(async (error) => {
    await lfsServer.close();
    throw error;
  });
  try {
    const repo = hub.createRepo('bench/model');
    await repo.commit({ files: [{ path: 'config.json', content: '{"model_type":"bench"}\n' }, { path: 'model.safetensors', fromFile: file }] });
    const proj = join(dir, 'proj');
    const cache = join(dir, 'cache');
    const dest = join(proj, 'models');
    const base = join(dir, 'baseline');
    await rm(proj, { recursive: true, force: true });
    await mkdir(proj, { recursive: true });
    await writeFile(join(proj, 'models.yaml'), 'version: 1\nmodels:\n  m:\n    hf: bench/model\n');
    const env = cleanEnv({ MODELS_CACHE_DIR: cache, HF_ENDPOINT: hub.url, HF_TOKEN: '', HUGGING_FACE_HUB_TOKEN: '', HF_TOKEN_PATH: join(dir, 'no-token'), HF_HOME: join(dir, 'hf-home'), HF_HUB_CACHE: join(dir, 'hf-hub') });
    await mustExec(process.execPath, [ctx.cli, 'lock', '--quiet'], { cwd: proj, env });
    const clean = async (...paths) => {
      for (const p of paths) await rm(p, { recursive: true, force: true });
      await ctx.settle(lfsRoot);
    };
    const url = `${hub.url}/bench/model/resolve/main/model.safetensors`;
    const curl = `mkdir -p ${q(base)} && curl -sS --fail -L --noproxy '*' -o ${q(join(base, 'model.safetensors'))} ${q(url)} && openssl dgst -sha256 ${q(join(base, 'model.safetensors'))} > /dev/null`;
    log('\nhf: 1 LFS file through the stand-in Hub');
    const r = {};
    Object.assign(
      r,
      await ctx.sideBySide({
        cold: { label: `hf: cold install --frozen (${size / MiB} MiB LFS)`, prepare: () => clean(cache, dest), run: () => models(['install', '--frozen', '--quiet'], { cwd: proj, env }) },
        curl: { label: 'hf: curl -L + openssl', prepare: () => clean(base), run: () => ctx.timed('/bin/sh', ['-c', curl]) },
      }),
    );
    hub.reset();
    await clean(cache, dest);
    await mustExec(process.execPath, [ctx.cli, 'install', '--frozen', '--quiet'], { cwd: proj, env });
    r.apiRequests = hub.count('/api/');
    await clean(cache, dest, base);
    return r;
  } finally {
    await hub.close();
    await lfsServer.close();
    await rm(lfsRoot, { recursive: true, force: true });
  }
}

export function hubTable(r, size, fmt) {
  const ratio = r.cold.seconds / r.curl.seconds;
  return [
    `| hf: ${fmt.size(size)} LFS file, stand-in Hub (302 to the static server) | ours | baseline | ratio | target | peak RSS (ours / baseline) |`,
    '|---|---|---|---|---|---|',
    `| cold \`install --frozen\` (1 LFS file + config.json) | ${fmt.s(r.cold)} | ${fmt.s(r.curl)} curl -L + openssl | ${ratio.toFixed(2)}× | ≤ 0.9×${ratio <= 0.9 ? ' ✓' : ' ✗'} | ${fmt.mb(r.cold.rssMB)} / ${fmt.mb(r.curl.rssMB)} |`,
    `| Hub API requests during \`install --frozen\` | ${r.apiRequests} | | | 0${r.apiRequests === 0 ? ' ✓' : ' ✗'} | |`,
  ].join('\n');
}
