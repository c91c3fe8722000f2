/**
 * The "template fix" benchmark (issue 15): a 1 GiB GGUF-like file whose v2 inserts 1,000 bytes
 * near the start (a chat template fixed in the header), published with fixed and with
 * content-defined chunking. Measures what `models update` v1 -> v2 fetches against what it reuses,
 * publish time (new registry, and v2 into a registry holding v1), and cold install time of v1.
 */
import { randomFillSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

const MiB = 1024 * 1024;
const INSERT_AT = 1536;
const INSERT_BYTES = 1000;

/** A GGUF-shaped header (magic, version, counts, a chat-template string) then random tensor bytes. */
function ggufHeader(template) {
  const key = Buffer.from('tokenizer.chat_template');
  const text = Buffer.from(template);
  const parts = [Buffer.from('GGUF'), u32(3), u64(1), u64(1), u64(key.length), key, u32(8), u64(text.length), text];
  return Buffer.concat(parts);
}
const u32 = (n) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};

/** v1 and v2 of the model: same tensor bytes, v2's header holds 1,000 more template bytes at INSERT_AT. */
async function prepare(dir, size, log) {
  const marker = join(dir, 'ready.json');
  const want = JSON.stringify({ size, version: 1 });
  const v1 = join(dir, 'raw', 'v1', 'model.gguf');
  const v2 = join(dir, 'raw', 'v2', 'model.gguf');
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === want) return { v1, v2 };
  log(`building the template-fix dataset in ${dir}`);
  await rm(dir, { recursive: true, force: true });
  const template = '{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}'.repeat(40);
  const header1 = ggufHeader(template);
  const fix = Buffer.from('{# fixed: tool calls #}'.repeat(Math.ceil(INSERT_BYTES / 23))).subarray(0, INSERT_BYTES);
  const t = Buffer.from(template);
  const header2 = ggufHeader(Buffer.concat([t.subarray(0, INSERT_AT - (header1.length - t.length)), fix, t.subarray(INSERT_AT - (header1.length - t.length))]).toString('latin1'));
  if (header2.length !== header1.length + INSERT_BYTES) throw new Error('template-fix header is off');
  for (const path of [v1, v2]) await mkdir(dirname(path), { recursive: true });
  const out1 = await open(v1, 'w');
  const out2 = await open(v2, 'w');
  try {
    await out1.write(header1);
    await out2.write(header2);
    const buffer = Buffer.allocUnsafe(16 * MiB);
    for (let done = header1.length; done < size; ) {
      const n = Math.min(buffer.length, size - done);
      randomFillSync(buffer, 0, n);
      await out1.write(buffer, 0, n);
      await out2.write(buffer, 0, n);
      done += n;
    }
  } finally {
    await out1.close();
    await out2.close();
  }
  await writeFile(marker, want);
  return { v1, v2 };
}

/**
 * ctx: { work, size, runs, chunkSize, cli, models, measure, mustExec, cleanEnv, startServer, log, sh }.
 * Fixed and cdc runs alternate, so that other load on the machine weighs on both alike.
 */
export async function benchTemplateFix(ctx) {
  const { work, size, log } = ctx;
  const dir = join(work, `template-${size}`);
  const { v1, v2 } = await prepare(dir, size, log);
  const www = join(dir, 'www');
  await mkdir(www, { recursive: true });
  const server = await ctx.startServer(www);
  const kinds = ['fixed', 'cdc'];
  const setups = Object.fromEntries(kinds.map((chunking) => [chunking, setup(ctx, chunking, { v1, v2, www, server })]));
  const results = Object.fromEntries(kinds.map((k) => [k, {}]));
  try {
    for (const step of ['publish', 'publish2', 'install', 'update']) {
      log(`\ntemplate fix: ${step}`);
      const times = Object.fromEntries(kinds.map((k) => [k, []]));
      const cpu = Object.fromEntries(kinds.map((k) => [k, []]));
      for (let i = 0; i < ctx.runs; i++) {
        for (const chunking of kinds) {
          const m = await ctx.measure(`${setups[chunking].labels[step]} (${chunking}) ${i + 1}/${ctx.runs}`, { ...setups[chunking].steps[step], runs: 1 });
          times[chunking].push(m.seconds);
          if (m.cpuSeconds !== undefined) cpu[chunking].push(m.cpuSeconds);
        }
      }
      for (const chunking of kinds) {
        results[chunking][step] = { seconds: median(times[chunking]), all: times[chunking], cpuSeconds: cpu[chunking].length ? median(cpu[chunking]) : undefined };
      }
    }
    for (const chunking of kinds) Object.assign(results[chunking], await setups[chunking].facts());
  } finally {
    await server.close();
  }
  return results;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/** The four measured steps for one chunking, and the facts (bytes, chunks) gathered along the way. */
function setup(ctx, chunking, { v1, v2, www, server }) {
  const { models, mustExec, cleanEnv, cli, work } = ctx;
  const registry = join(www, chunking);
  const flags = chunking === 'fixed' ? ['--chunking', 'fixed', '--chunk-size', ctx.chunkSize] : ['--chunking', 'cdc'];
  const publish = (raw, version) => () => models(['publish', dirname(raw), '--to', registry, '--model', 'bench/template', '--version', version, ...flags, '--json']);
  const publishV1 = () => mustExec(process.execPath, [cli, 'publish', dirname(v1), '--to', registry, '--model', 'bench/template', '--version', 'v1', ...flags, '--quiet']);
  const proj = join(work, `proj-template-${chunking}`);
  const cache = join(work, `cache-template-${chunking}`);
  const env = cleanEnv({ MODELS_CACHE_DIR: cache });
  const yaml = (version) => `version: 1\nregistry: ${server.url}/${chunking}\nmodels:\n  m:\n    model: bench/template\n    version: ${version}\n`;
  const installV1 = async () => {
    await rm(cache, { recursive: true, force: true });
    await rm(proj, { recursive: true, force: true });
    await mkdir(proj, { recursive: true });
    await writeFile(join(proj, 'models.yaml'), yaml('v1'));
    await mustExec(process.execPath, [cli, 'lock', '--quiet'], { cwd: proj, env });
    await ctx.sh('sync');
  };
  const facts = {};
  const steps = {
    publish: {
      prepare: () => rm(registry, { recursive: true, force: true }),
      run: async () => {
        const res = await publish(v1, 'v1')();
        if (res.code === 0) facts.chunks = JSON.parse(res.stdout).chunks;
        return res;
      },
    },
    publish2: {
      prepare: publishV1,
      run: async () => {
        const res = await publish(v2, 'v2')();
        // Remove v2 again so the next run publishes it anew (its chunks are re-checked, never trusted).
        await mustExec(process.execPath, ['-e', removeVersion, join(registry, 'models.json')]);
        return res;
      },
    },
    install: { prepare: installV1, run: () => models(['install', '--frozen', '--quiet'], { cwd: proj, env }) },
    update: {
      prepare: async () => {
        await publish(v2, 'v2')();
        await installV1();
        await mustExec(process.execPath, [cli, 'install', '--frozen', '--quiet'], { cwd: proj, env });
        await writeFile(join(proj, 'models.yaml'), yaml('v2'));
      },
      run: async () => {
        const res = await models(['update', '--json'], { cwd: proj, env });
        if (res.code === 0) {
          const json = JSON.parse(res.stdout);
          facts.fetched = json.bytesDownloaded;
          facts.reused = json.bytesFromCache;
        }
        return res;
      },
    },
  };
  const labels = { publish: 'publish v1, new registry', publish2: 'publish v2 into the registry holding v1', install: 'cold install v1', update: 'update v1 -> v2' };
  return {
    steps,
    labels,
    facts: async () => {
      await rm(proj, { recursive: true, force: true });
      await rm(cache, { recursive: true, force: true });
      return facts;
    },
  };
}

const removeVersion = `const fs = require('fs'); const p = process.argv[1]; const j = JSON.parse(fs.readFileSync(p, 'utf8')); delete j.bench.template.v2; fs.writeFileSync(p, JSON.stringify(j, null, 1) + '\\n');`;

/** The markdown table for the results. */
export function templateFixTable(results, size, chunkSize) {
  const { fixed, cdc } = results;
  const gib = (b) => (b >= 1024 * MiB ? `${(b / 1024 / MiB).toFixed(2)} GiB` : `${(b / MiB).toFixed(1)} MiB`);
  const pct = (b) => `${((100 * b) / size).toFixed(1)}%`;
  // Wall clock, and the CPU time (user + system) of the process: the steadier figure on a busy machine.
  const s = (m) => `${m.seconds.toFixed(2)} s${m.cpuSeconds !== undefined ? ` (CPU ${m.cpuSeconds.toFixed(2)} s)` : ''}`;
  const ratio = (a, b) => `${(a.seconds / b.seconds).toFixed(2)}×${a.cpuSeconds && b.cpuSeconds ? ` (CPU ${(a.cpuSeconds / b.cpuSeconds).toFixed(2)}×)` : ''}`;
  const ok = (good) => (good ? ' ✓' : ' ✗');
  const publishRatio = cdc.publish.seconds / fixed.publish.seconds;
  const installRatio = cdc.install.seconds / fixed.install.seconds;
  return [
    `| template fix: ${gib(size)} GGUF-like file, ${INSERT_BYTES.toLocaleString('en-US')} bytes inserted at byte ${INSERT_AT} | fixed (${chunkSize}) | cdc | cdc / fixed | target |`,
    '|---|---|---|---|---|',
    `| \`update\` v1 → v2 fetches | ${gib(fixed.fetched)} (${pct(fixed.fetched)}) | ${gib(cdc.fetched)} (${pct(cdc.fetched)}) | | cdc ≤ 5%${ok(cdc.fetched <= 0.05 * size)} |`,
    `| \`update\` v1 → v2 reuses from the cache | ${gib(fixed.reused)} | ${gib(cdc.reused)} | | |`,
    `| \`update\` v1 → v2 time | ${s(fixed.update)} | ${s(cdc.update)} | ${ratio(cdc.update, fixed.update)} | |`,
    `| publish v1 into a new registry | ${s(fixed.publish)} | ${s(cdc.publish)} | ${ratio(cdc.publish, fixed.publish)} | ≤ 1.3×${ok(publishRatio <= 1.3)} |`,
    `| publish v2 into the registry holding v1 | ${s(fixed.publish2)} | ${s(cdc.publish2)} | ${ratio(cdc.publish2, fixed.publish2)} | |`,
    `| cold install v1 | ${s(fixed.install)} | ${s(cdc.install)} | ${ratio(cdc.install, fixed.install)} | ≈ 1×${ok(installRatio <= 1.1)} |`,
    `| chunks of v1 (requests for a cold install) | ${fixed.chunks} | ${cdc.chunks} | | |`,
  ].join('\n');
}
