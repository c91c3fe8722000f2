/** One model's plan → fetch → stage → promote, through the module's own API. */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { afterAll, describe, expect, it } from 'vitest';
import { type AssembleEnv, type ModelTarget, executePlan, planModel } from '../src/install/assemble.js';
import { createFileHasher } from '../src/store/file-hasher.js';
import { HttpClient } from '../src/net/http.js';
import { RegistryClient } from '../src/registry/client.js';
import { Store } from '../src/store/store.js';
import { getManifest } from '../src/store/manifests.js';
import type { ModelContent } from '../src/sources/index.js';
import { CONFORMANCE, EXPECTED, mismatches, tempDir } from './support/cli.js';

const REGISTRY = join(CONFORMANCE, 'registry');
const temps: string[] = [];
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

async function setup() {
  const dir = await tempDir();
  temps.push(dir);
  const store = new Store(join(dir, 'cache'));
  await store.init();
  const hasher = createFileHasher(0);
  const env: AssembleEnv = {
    store,
    client: new RegistryClient([REGISTRY], { http: new HttpClient() }),
    limit: pLimit(4),
    rangeSize: 32 * 1024 * 1024,
    linkMode: 'auto',
    root: join(dir, 'models'),
    lockTimeoutMs: 5_000,
    verifyInPlace: false,
    hasher,
    onBytes: () => undefined,
  };
  const target = (path: string): ModelTarget => ({
    name: path,
    kind: 'xprim',
    model: 'demo/tiny',
    version: 'v1',
    resolved: 'v1',
    registry: REGISTRY,
    manifest: EXPECTED['demo/tiny@v1']?.manifest as string,
    path,
    tags: [],
    dest: join(dir, 'models', path),
  });
  const content = async (t: ModelTarget): Promise<ModelContent> => ({ layout: (await getManifest(store, env.client, t.manifest, t.name)).layout, client: env.client });
  const plan = async (t: ModelTarget) => planModel(env, t, await content(t));
  return { env, target, store, hasher, plan };
}

describe('executePlan', () => {
  it('recovers when a stored file vanishes between planning and linking (a concurrent cache prune)', async () => {
    const { env, target, store, hasher, plan: planFor } = await setup();
    await executePlan(env, await planFor(target('first')));
    expect(mismatches(target('first').dest, 'demo/tiny@v1')).toEqual([]);

    const plan = await planFor(target('second'));
    expect(plan.neededBytes).toBe(0); // everything is in the store…
    const modelBin = EXPECTED['demo/tiny@v1']?.files['model.bin']?.sha256 as string;
    await rm(store.objectPath(modelBin)); // …until another process prunes it
    const record = await executePlan(env, plan);
    expect(mismatches(target('second').dest, 'demo/tiny@v1')).toEqual([]);
    expect(record.files.find((f) => f.path === 'model.bin')?.sha256).toBe(modelBin);
    expect(await store.hasObject(modelBin, 200000)).toBe(true);
    await hasher.close();
  });
});
