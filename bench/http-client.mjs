#!/usr/bin/env node
/**
 * What receiving bytes costs in Node, by HTTP client: undici `request()` (what the install uses),
 * undici `dispatch()` with a handler of its own, and `node:http`, each draining one URL and
 * printing wall time, user and system CPU, and RSS. Serve something big first, e.g. with
 * `node bench/run.mjs --only single --serve`, then:
 *
 *   node bench/http-client.mjs http://127.0.0.1:PORT/raw/single/model.bin [--runs 3]
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import undici from 'undici';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { runs: { type: 'string', default: '3' } } });
const url = positionals[0];
if (!url) throw new Error('usage: node bench/http-client.mjs URL [--runs N]');

const clients = {
  async request() {
    const { body } = await undici.request(url, { highWaterMark: 64 * 1024 });
    let n = 0;
    for await (const part of body) n += part.length;
    return n;
  },
  dispatch() {
    const target = new URL(url);
    let n = 0;
    return new Promise((resolve, reject) => {
      new undici.Agent().dispatch(
        { origin: target.origin, path: target.pathname + target.search, method: 'GET' },
        { onConnect() {}, onHeaders: () => true, onData: (chunk) => ((n += chunk.length), true), onComplete: () => resolve(n), onError: reject },
      );
    });
  },
  'node:http'() {
    let n = 0;
    return new Promise((resolve, reject) => {
      http.get(url, (res) => res.on('data', (d) => (n += d.length)).on('end', () => resolve(n)).on('error', reject)).on('error', reject);
    });
  },
};

for (let run = 1; run <= Number(values.runs); run++) {
  for (const [name, drain] of Object.entries(clients)) {
    const started = performance.now();
    const cpu = process.cpuUsage();
    const bytes = await drain();
    const used = process.cpuUsage(cpu);
    const ms = performance.now() - started;
    console.log(`${name.padEnd(9)} run ${run}: ${(bytes / 2 ** 20).toFixed(0)} MiB in ${(ms / 1000).toFixed(2)} s, user ${(used.user / 1e6).toFixed(2)} s, sys ${(used.system / 1e6).toFixed(2)} s, rss ${Math.round(process.memoryUsage().rss / 1e6)} MB`);
  }
}
