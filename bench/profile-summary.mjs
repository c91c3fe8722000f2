#!/usr/bin/env node
/**
 * Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per category
 * (idle = waiting on network/disk in the event loop, hashing, undici, fs, GC, our code).
 *
 *   node bench/profile-summary.mjs FILE.cpuprofile [--top 20]
 *
 * Only the main thread is profiled: fs writes run on libuv's thread pool and show up as idle.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

function shortUrl(url) {
  if (!url) return '';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) return path.slice(nm + 'node_modules/'.length);
  const lib = path.lastIndexOf('/lib/');
  if (lib >= 0) return path.slice(lib + 1);
  return path;
}

function categoryOf(node) {
  const { functionName, url } = node.callFrame;
  if (functionName === '(idle)') return 'idle (waiting: network, disk, thread pool)';
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (functionName === '(program)') return 'program (V8/native, unattributed)';
  if (/node_modules\/undici\//.test(url)) return 'undici (HTTP)';
  if (/node_modules\//.test(url)) return 'other dependencies';
  if (/\/lib\//.test(url)) return 'xprim-models (lib)';
  if (/^node:internal\/crypto|^node:crypto/.test(url)) return 'node crypto (SHA-256)';
  if (/^node:internal\/fs|^node:fs/.test(url)) return 'node fs';
  if (/^node:internal\/(streams|webstreams)|^node:stream/.test(url)) return 'node streams';
  if (/^node:(internal\/)?(net|stream_base|http|tls|dns)/.test(url)) return 'node net';
  if (/^node:internal\/modules|^node:internal\/main|^node:internal\/bootstrap/.test(url)) return 'module loading / startup';
  if (url.startsWith('node:')) return 'node (other)';
  if (!url && functionName) return 'native bindings (fs calls, buffers: the call, not the wait)';
  return 'other';
}

/** Self time (ms) per function and per category, from samples + timeDeltas. */
export function summariseProfile(profile, top = 20) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  const { samples = [], timeDeltas = [] } = profile;
  // Sample i lasts until sample i+1 (the way DevTools attributes time).
  for (let i = 0; i < samples.length; i++) {
    const dt = timeDeltas[i + 1] ?? 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, dt));
  }
  const totalUs = profile.endTime - profile.startTime;
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Which of our functions each sample ran under: says whether hashing was chunk or file hashing.
  const ourFrame = (id) => {
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = nodes.get(cur)?.callFrame;
      if (frame && /\/lib\//.test(frame.url)) return `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
    }
    return undefined;
  };
  const byOurFrame = new Map();
  const byFunction = new Map();
  const byCategory = new Map();
  for (const [id, us] of selfUs) {
    const node = nodes.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || '(anonymous)'}${url ? ` ${shortUrl(url)}:${lineNumber + 1}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const cat = categoryOf(node);
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + us);
    if (cat.startsWith('idle') || cat.startsWith('garbage') || cat.startsWith('program')) continue;
    const ours = ourFrame(id) ?? '(no xprim-models frame: startup, event loop, callbacks)';
    byOurFrame.set(ours, (byOurFrame.get(ours) ?? 0) + us);
  }
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, ms: us / 1000, share: us / totalUs }));
  return { totalMs: totalUs / 1000, functions: sorted(byFunction).slice(0, top), categories: sorted(byCategory), ourFrames: sorted(byOurFrame).slice(0, top) };
}

export function formatSummary(summary) {
  const pct = (x) => `${(x * 100).toFixed(1)}%`;
  const lines = [`Main-thread profile, ${summary.totalMs.toFixed(0)} ms in total.`, '', '| category | self ms | share |', '|---|---|---|'];
  for (const c of summary.categories) lines.push(`| ${c.name} | ${c.ms.toFixed(0)} | ${pct(c.share)} |`);
  lines.push('', '| top self-time functions | self ms | share |', '|---|---|---|');
  for (const f of summary.functions) lines.push(`| \`${f.name.replace(/\|/g, '\\|')}\` | ${f.ms.toFixed(0)} | ${pct(f.share)} |`);
  lines.push('', '| busy time by nearest xprim-models frame on the stack | ms | share |', '|---|---|---|');
  for (const f of summary.ourFrames) lines.push(`| \`${f.name.replace(/\|/g, '\\|')}\` | ${f.ms.toFixed(0)} | ${pct(f.share)} |`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  const topIndex = process.argv.indexOf('--top');
  const top = topIndex > 0 ? Number(process.argv[topIndex + 1]) : 20;
  const profile = JSON.parse(await readFile(file, 'utf8'));
  process.stdout.write(`${formatSummary(summariseProfile(profile, top))}\n`);
}
