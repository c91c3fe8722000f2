/**
 * Failures while a model is being assembled, on a real server: a file whose bytes are right chunk by
 * chunk but whose per-file sha256 is wrong must fail the install with E_INTEGRITY (exit 6) and a
 * one-line message, even while other chunks are still in flight.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { cleanTemps, cliEnv, hasStackTrace, randomish, runCli, sha256, tempDir, writeProject } from './support/robustness.js';

const servers: RegistryServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(cleanTemps);

const KiB = 1024;

describe('a file hash rejected while chunks are still in flight', () => {
  it('exits 6 naming the file, with no unhandled rejection', async () => {
    const registry = await tempDir('xprim-inflight-');
    await mkdir(join(registry, 'data'), { recursive: true });
    // First file: one chunk, right bytes, wrong sha256. Second file: 16 chunks, slowed by --limit-rate.
    const chunkSize = 64 * KiB;
    const first = randomish(chunkSize, 1);
    const second = randomish(16 * chunkSize, 2);
    const chunks = [first, ...Array.from({ length: 16 }, (_, i) => second.subarray(i * chunkSize, (i + 1) * chunkSize))];
    for (const c of chunks) await writeFile(join(registry, 'data', sha256(c)), c);
    const manifest = JSON.stringify({
      total_size: first.length + second.length,
      chunk_size: chunkSize,
      chunks: chunks.map((c) => sha256(c)),
      files: [
        { path: 'first.bin', size: first.length, sha256: sha256('not these bytes') },
        { path: 'second.bin', size: second.length, sha256: sha256(second) },
      ],
    });
    await writeFile(join(registry, 'data', sha256(manifest)), manifest);
    await writeFile(join(registry, 'models.json'), JSON.stringify({ t: { m: { v1: { hash: sha256(manifest) } } } }));
    const server = await startRegistryServer({ root: registry });
    servers.push(server);
    const dir = await tempDir();
    await writeProject(dir, server.url, { m: { model: 't/m', version: 'v1' } });
    const result = await runCli(['install', '--concurrency', '1', '--limit-rate', '256KiB'], dir, cliEnv(join(dir, 'cache')));
    expect(result.code, result.stderr).toBe(6);
    expect(result.stderr).toMatch(/error: m: file first\.bin has sha256 [0-9a-f]{64}, the manifest says/);
    expect(result.stderr).not.toMatch(/Unhandled|PromiseRejection/);
    expect(hasStackTrace(result.stderr)).toBe(false);
    expect(existsSync(join(dir, 'models', 'm'))).toBe(false);
    // It stopped at the failure instead of fetching every chunk of the second file first.
    expect(server.requests.filter((r) => r.path.startsWith('/data/') && !r.aborted && r.status === 200).length).toBeLessThan(chunks.length + 1);
  });
});
