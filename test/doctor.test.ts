/**
 * `models doctor` end to end: the real CLI, the conformance registry from a folder and over HTTP,
 * an unreachable registry (a closed port), a missing model.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFORMANCE, cliProject, yamlFor } from './support/cli.js';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';

const REGISTRY = join(CONFORMANCE, 'registry');
const temps: string[] = [];
let server: RegistryServer;

beforeAll(async () => {
  server = await startRegistryServer({ root: REGISTRY });
});

afterAll(async () => {
  await server?.close();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

const project = (yaml: string) => cliProject(yaml, temps);

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('doctor', () => {
  it('reports an unreachable registry and a missing model, each with a hint, and exits non-zero', async () => {
    const port = await closedPort();
    const p = await project(
      [
        'version: 1',
        `registry: ${REGISTRY}`,
        `mirrors: [http://127.0.0.1:${port}]`,
        'models:',
        '  tiny:',
        '    model: demo/tiny',
        '    version: v1',
        '  edge:',
        '    model: demo/edge',
        '    version: v1',
        '',
      ].join('\n'),
    );
    expect((await p.cli('install')).code).toBe(0);
    const ready = await p.cli('doctor');
    expect(ready.stdout).toMatch(/^ok\s+registry\s+\/.*registry reachable in \d+ ms, 4 models$/m);
    expect(ready.stdout).toMatch(/^WARN\s+registry\s+http:\/\/127\.0\.0\.1:\d+\/: mirror unreachable: .*ECONNREFUSED/m);
    expect(ready.stdout).toMatch(/Ready, 1 warning\./);
    expect(ready.code).toBe(0);

    // Now the registry itself is unreachable and a model is missing.
    const yaml = (await readFile(join(p.dir, 'models.yaml'), 'utf8')).replace(`registry: ${REGISTRY}`, `registry: http://127.0.0.1:${port}`);
    await writeFile(join(p.dir, 'models.yaml'), yaml);
    await rm(join(p.dir, 'models.lock'));
    await rm(join(p.dir, 'models', 'edge'), { recursive: true });
    const bad = await p.cli('doctor');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^FAIL\s+lock\s+.*models\.lock: missing\n\s+hint: run `models lock`/m);
    expect(bad.stdout).toMatch(/^FAIL\s+registry\s+http:\/\/127\.0\.0\.1:\d+\/: registry unreachable: .*\n\s+hint: check the network/m);
    expect(bad.stdout).toMatch(/Not ready: \d+ problems/);

    const doc = JSON.parse((await p.cli('doctor', '--json')).stdout) as { ready: boolean; checks: { area: string; subject: string; status: string; hint?: string }[] };
    expect(doc.ready).toBe(false);
    const registry = doc.checks.find((c) => c.area === 'registry' && c.subject.includes(`:${port}`));
    expect(registry).toMatchObject({ status: 'fail', hint: expect.stringMatching(/MODELS_MIRRORS/) });
  });

  it('names a missing model and its hint when everything else is fine', async () => {
    const p = await project(yamlFor(server.url, { tiny: { model: 'demo/tiny', version: 'v2' }, edge: { model: 'demo/edge', version: 'v1' } }));
    expect((await p.cli('install')).code).toBe(0);
    await rm(join(p.dir, 'models', 'edge'), { recursive: true });
    const r = await p.cli('doctor');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ok\s+registry\s+http:\/\/127\.0\.0\.1:\d+\/: registry reachable in \d+ ms/m);
    expect(r.stdout).toMatch(/^ok\s+model\s+tiny: demo\/tiny@v2: installed$/m);
    expect(r.stdout).toMatch(/^FAIL\s+model\s+edge: demo\/edge@v1: missing .*\n\s+hint: run `models install`$/m);
    expect(r.stdout).toMatch(/Not ready: 1 problem\./);
    const doc = JSON.parse((await p.cli('doctor', '--json')).stdout) as { ready: boolean; problems: number; models: { name: string; status: string }[] };
    expect(doc).toMatchObject({ ready: false, problems: 1 });
    expect(doc.models.map((m) => [m.name, m.status])).toEqual([
      ['tiny', 'installed'],
      ['edge', 'missing'],
    ]);
  });
});
