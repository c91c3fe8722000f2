/**
 * `models outdated` and `models update` end to end: the real CLI against a private copy of the
 * conformance registry served over HTTP; an alias is moved by publishing a new version into it.
 */
import { chmod, cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publish } from '../src/ops/publish.js';
import { CONFORMANCE, tempDir, cliProject, yamlFor } from './support/cli.js';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';

const temps: string[] = [];
let server: RegistryServer;
let registryCopy: string;

beforeAll(async () => {
  registryCopy = await tempDir('xprim-update-registry-');
  temps.push(registryCopy);
  await cp(join(CONFORMANCE, 'registry'), registryCopy, { recursive: true });
  server = await startRegistryServer({ root: registryCopy });
});

afterAll(async () => {
  await server?.close();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

const project = (yaml: string) => cliProject(yaml, temps);

describe('outdated and update', () => {
  it('moving an alias makes outdated exit 1; update pins the new version fetching only what changed; outdated exits 0 again', async () => {
    const p = await project(yamlFor(server.url, { tiny: { model: 'demo/tiny', version: 'latest' } }));
    expect((await p.cli('install')).code).toBe(0);
    const current = await p.cli('outdated');
    expect(current.code).toBe(0);
    expect(current.stdout).toMatch(/tiny\s+demo\/tiny\s+latest\s+v2 \([0-9a-f]{8}\)\s+v2 \([0-9a-f]{8}\)\s+current/);

    // Publish v3 = v2 with one file changed, and move `latest` to it.
    const source = await tempDir();
    temps.push(source);
    await cp(join(p.dir, 'models', 'tiny'), source, { recursive: true });
    await chmod(join(source, 'config.json'), 0o644);
    await writeFile(join(source, 'config.json'), '{"hidden_size": 1024}\n');
    const published = await publish({ sourceDir: source, registryDir: registryCopy, model: 'demo/tiny', version: 'v3', aliases: ['latest'], chunkSize: 64 * 1024 });

    const stale = await p.cli('outdated');
    expect(stale.code).toBe(1);
    expect(stale.stdout).toMatch(/tiny\s+demo\/tiny\s+latest\s+v2 \([0-9a-f]{8}\)\s+v3 \([0-9a-f]{8}\)\s+outdated/);
    const staleJson = JSON.parse((await p.cli('outdated', '--json')).stdout) as { outdated: boolean; models: { status: string; latest: { resolved: string; manifest: string } }[] };
    expect(staleJson.outdated).toBe(true);
    expect(staleJson.models[0]).toMatchObject({ status: 'outdated', latest: { resolved: 'v3', manifest: published.manifestHash } });

    const update = await p.cli('update', '--json');
    expect(update.code).toBe(0);
    const result = JSON.parse(update.stdout) as { changes: { name: string; from: { resolved: string }; to: { resolved: string } }[]; bytesDownloaded: number; bytesFromCache: number };
    expect(result.changes).toEqual([expect.objectContaining({ name: 'tiny', from: expect.objectContaining({ resolved: 'v2' }), to: expect.objectContaining({ resolved: 'v3' }) })]);
    // Only the changed file's chunk(s) crossed the wire; model.bin and vocab.txt came from the cache.
    expect(result.bytesDownloaded).toBeGreaterThan(0);
    expect(result.bytesDownloaded).toBeLessThanOrEqual(2 * 64 * 1024);
    expect(await readFile(join(p.dir, 'models', 'tiny', 'config.json'), 'utf8')).toBe('{"hidden_size": 1024}\n');
    expect(await readFile(join(p.dir, 'models.lock'), 'utf8')).toContain(`manifest: ${published.manifestHash}`);

    const after = await p.cli('outdated');
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/v3 \([0-9a-f]{8}\)\s+v3 \([0-9a-f]{8}\)\s+current/);
    expect((await p.cli('verify')).code).toBe(0);

    // The plain-text form of update says old → new and what was fetched.
    const again = await p.cli('update');
    expect(again.stdout).toMatch(/already at its newest version/);
    expect(again.stdout).toMatch(/0 B fetched/);
  });
});

