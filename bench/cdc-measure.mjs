#!/usr/bin/env node
/**
 * The measurements behind docs/cdc.md ("Decisions, measured"), in one process, on generated data:
 *   1. scan throughput: a plain-JS Gear scan (32-bit, ~10 lines) vs gearhash-jit vs SHA-256
 *   2. chunk sizes of the cdc chunker on 1 GiB of random bytes
 *   3. what an insertion near the start / an edit in the middle leaves shared
 *   4. one stream vs resetting the chunker (a forced cut) at every file start
 *
 *   npm run build && node bench/cdc-measure.mjs
 */
import { createCipheriv, createHash } from 'node:crypto';
import { Hasher } from 'gearhash-jit';
import { GearCutter } from '../lib/ops/chunker.js';

const MiB = 1024 * 1024;
const noise = (n, seed) => {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(seed);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
};
const mbps = (bytes, f) => {
  const t0 = performance.now();
  f();
  return bytes / 1e6 / ((performance.now() - t0) / 1000);
};
const best = (runs, f) => Math.max(...Array.from({ length: runs }, f));

// 1. Scan throughput, over the whole buffer (a real scan skips the first 4 MiB of every chunk).
const G32 = Int32Array.from({ length: 256 }, (_, b) => createHash('sha256').update(`gear-${b}`).digest().readInt32BE(0));
function jsScan(buf) {
  let h = 0;
  let cuts = 0;
  for (let i = 0; i < buf.length; i++) {
    h = ((h << 1) + G32[buf[i]]) | 0;
    if ((h & -2048) === 0) cuts++;
  }
  return cuts;
}
function jitScan(buf) {
  const hasher = new Hasher(0xfffff80000000000n);
  let cuts = 0;
  for (let off = 0; off < buf.length; off += 256 * 1024) {
    let part = buf.subarray(off, Math.min(buf.length, off + 256 * 1024));
    for (let p = hasher.nextMatch(part); p !== -1; p = hasher.nextMatch(part)) {
      cuts++;
      part = part.subarray(p);
    }
  }
  return cuts;
}
const data = noise(256 * MiB, 1);
console.log('1. scan throughput over 256 MiB (best of 3, MB/s):');
console.log(`   plain JS Gear (32-bit)  ${best(3, () => mbps(data.length, () => jsScan(data))).toFixed(0)}`);
console.log(`   gearhash-jit (WASM)     ${best(3, () => mbps(data.length, () => jitScan(data))).toFixed(0)}`);
console.log(`   SHA-256 (node:crypto)   ${best(3, () => mbps(data.length, () => createHash('sha256').update(data).digest())).toFixed(0)}`);

// The cdc chunker as publish drives it: 4 MiB reads, cuts as they come.
function cutAll(buf) {
  const cutter = new GearCutter();
  const out = [];
  let start = 0;
  for (let fill = 0; fill < buf.length; ) {
    fill = Math.min(buf.length, fill + 4 * MiB);
    for (let n = cutter.cut(buf.subarray(start, fill)); n > 0; n = cutter.cut(buf.subarray(start, fill))) {
      out.push(buf.subarray(start, start + n));
      start += n;
    }
  }
  if (start < buf.length) out.push(buf.subarray(start));
  return out.map((b) => `${createHash('sha256').update(b).digest('hex')}:${b.length}`);
}
const sizeOf = (c) => Number(c.split(':')[1]);
const diff = (a, b) => {
  const have = new Set(a);
  const fresh = b.filter((c) => !have.has(c));
  return `${fresh.length} new chunks, ${(fresh.reduce((s, c) => s + sizeOf(c), 0) / MiB).toFixed(1)} MiB`;
};

// 2. Sizes.
const gib = noise(1024 * MiB, 2);
const chunks = cutAll(gib);
const sizes = chunks.map(sizeOf).slice(0, -1).sort((x, y) => x - y);
const at = (q) => (sizes[Math.floor(q * (sizes.length - 1))] / MiB).toFixed(2);
console.log(`2. 1 GiB of random bytes: ${chunks.length} chunks, mean ${(gib.length / chunks.length / MiB).toFixed(2)} MiB; min ${at(0)}, p10 ${at(0.1)}, median ${at(0.5)}, p90 ${at(0.9)}, max ${at(1)} MiB; ${sizes.filter((s) => s === 16 * MiB).length} at 16 MiB`);

// 3. Sharing after an edit.
const inserted = Buffer.concat([gib.subarray(0, 1536), noise(1000, 3), gib.subarray(1536)]);
const edited = Buffer.from(gib);
edited.fill(0x42, 512 * MiB, 512 * MiB + 100);
console.log(`3. 1,000 bytes inserted at byte 1536: ${diff(chunks, cutAll(inserted))}; 100 bytes changed in the middle: ${diff(chunks, cutAll(edited))}`);

// 4. One stream vs a reset at every file start.
const stream = (files) => cutAll(Buffer.concat(files.map((f) => f[1])));
const perFile = (files) => files.flatMap((f) => (f[1].length ? cutAll(f[1]) : []));
const v1 = [
  ['config.json', Buffer.from('{"a":1}\n'.repeat(100))],
  ...[1, 2, 3].map((i) => [`model-${i}.safetensors`, noise(300 * MiB, 10 + i)]),
  ['tokenizer.json', noise(10 * MiB, 20)],
];
const v2 = v1.map(([p, d]) => {
  if (p === 'config.json') return [p, Buffer.concat([d, Buffer.from('{"b":2}\n')])];
  if (p === 'model-2.safetensors') return [p, Buffer.concat([Buffer.from('{"__metadata__":{"x":"y"}}'), d])];
  if (p === 'tokenizer.json') return [p, Buffer.concat([d.subarray(0, 5 * MiB), noise(3000, 21), d.subarray(5 * MiB)])];
  return [p, d];
});
let x = 7;
const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
const many = Array.from({ length: 2000 }, (_, i) => [`f${i}`, noise(Math.floor(25 * 1024 * Math.exp(rnd() * Math.log(100))), 100 + i)]);
const many2 = many.map(([p, d], i) => [p, i === 1000 ? Buffer.concat([Buffer.alloc(100, 120), d]) : d]);
console.log('4. one stream vs a reset (forced cut) at every file start:');
for (const [name, f] of [['one stream', stream], ['reset at file starts', perFile]]) {
  const a = f(v1);
  const m = f(many);
  console.log(`   ${name}: sharded model (910 MiB, 5 files; v2: config +8 B, a shard header +26 B, tokenizer +3,000 B): ${a.length} chunks, v2 ${diff(a, f(v2))}`);
  console.log(`   ${name}: 2,000 files of 25 KiB to 2.4 MiB; v2: one file +100 B: ${m.length} chunks, v2 ${diff(m, f(many2))}`);
}
