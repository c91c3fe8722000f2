/**
 * `models add` and `models remove` as a user runs them: the CLI in a real project folder, a real
 * HTTP server for url: entries and the conformance registry for XPRIM ones.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { CONFORMANCE_REGISTRY, cleanTemps, cliEnv, randomish, runCli, sha256, tempDir } from './support/robustness.js';

const servers: RegistryServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(cleanTemps);

const YAML = `# Models for the voice pipeline.
version: 1
registry: ${CONFORMANCE_REGISTRY} # the demo registry

models:
  # the small one first
  tiny:
    model: demo/tiny
    version: v1
`;

async function setup() {
  const base = await tempDir('xprim-add-');
  const site = join(base, 'site');
  await mkdir(site);
  const data = randomish(50_000, 11);
  await writeFile(join(site, 'silero_vad.onnx'), data);
  const server = await startRegistryServer({ root: site });
  servers.push(server);
  const dir = join(base, 'project');
  await mkdir(dir);
  await writeFile(join(dir, 'models.yaml'), YAML);
  return { base, dir, data, server, env: cliEnv(join(base, 'cache')) };
}

describe('models add', () => {
  it('adds a url: entry keeping comments and layout, locks it and installs it', async () => {
    const { dir, data, server, env } = await setup();
    const result = await runCli(['add', `${server.url}/silero_vad.onnx`, '--name', 'vad'], dir, env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout + result.stderr).toContain('added vad to models.yaml');
    const text = await readFile(join(dir, 'models.yaml'), 'utf8');
    expect(text.startsWith(YAML)).toBe(true); // everything written before stays byte for byte
    expect(text.slice(YAML.length)).toBe(`  vad:\n    url: ${server.url}/silero_vad.onnx\n`);
    expect(await readFile(join(dir, 'models.lock'), 'utf8')).toContain(`sha256: ${sha256(data)}`);
    expect(sha256(await readFile(join(dir, 'models', 'vad', 'silero_vad.onnx')))).toBe(sha256(data));
    // Only the added entry was installed.
    await expect(stat(join(dir, 'models', 'tiny'))).rejects.toThrow();
  });

  it('adds an XPRIM model by GROUP/MODEL@VERSION, and a name derived from the source', async () => {
    const { dir, env } = await setup();
    const result = await runCli(['add', 'demo/shared@v1'], dir, env);
    expect(result.code, result.stderr).toBe(0);
    const text = await readFile(join(dir, 'models.yaml'), 'utf8');
    expect(text).toContain('  shared:\n    model: demo/shared\n    version: v1\n');
    expect((await stat(join(dir, 'models', 'shared'))).isDirectory()).toBe(true);
  });

  it('creates models.yaml when there is none', async () => {
    const { dir, server, env } = await setup();
    const fresh = join(dir, 'fresh');
    await mkdir(fresh);
    const result = await runCli(['add', `${server.url}/silero_vad.onnx`, '--no-install'], fresh, env);
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(fresh, 'models.yaml'), 'utf8')).toBe(`version: 1\nmodels:\n  silero_vad:\n    url: ${server.url}/silero_vad.onnx\n`);
    await expect(stat(join(fresh, 'models'))).rejects.toThrow();
  });

  it('leaves models.yaml untouched when the source cannot be locked, and refuses a taken name', async () => {
    const { dir, server, env } = await setup();
    const missing = await runCli(['add', `${server.url}/nope.onnx`], dir, env);
    expect(missing.code).toBe(3);
    expect(await readFile(join(dir, 'models.yaml'), 'utf8')).toBe(YAML);
    const taken = await runCli(['add', `${server.url}/silero_vad.onnx`, '--name', 'tiny'], dir, env);
    expect(taken.code).toBe(2);
    expect(taken.stderr).toContain('already has a model named "tiny"');
    const bad = await runCli(['add', 'not a source'], dir, env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('hf:ORG/REPO');
    expect(await readFile(join(dir, 'models.yaml'), 'utf8')).toBe(YAML);
  });
});

describe('models remove', () => {
  it('removes the entry, its lock entry and its folder, keeping a file the user added', async () => {
    const { dir, server, env } = await setup();
    expect((await runCli(['add', `${server.url}/silero_vad.onnx`, '--name', 'vad'], dir, env)).code).toBe(0);
    expect((await runCli(['install'], dir, env)).code).toBe(0);
    await writeFile(join(dir, 'models', 'vad', 'notes.txt'), 'mine');
    const result = await runCli(['remove', 'vad'], dir, env);
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(join(dir, 'models.yaml'), 'utf8')).toBe(YAML);
    const lock = await readFile(join(dir, 'models.lock'), 'utf8');
    expect(lock).not.toContain('vad');
    expect(lock).toContain('tiny:');
    await expect(stat(join(dir, 'models', 'vad', 'silero_vad.onnx'))).rejects.toThrow();
    expect(await readFile(join(dir, 'models', 'vad', 'notes.txt'), 'utf8')).toBe('mine');
    expect(result.stderr).toContain('left in place');
    // The rest is still in place and in sync.
    const frozen = await runCli(['install', '--frozen'], dir, env);
    expect(frozen.code, frozen.stderr).toBe(0);
    const unknown = await runCli(['remove', 'nosuch'], dir, env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no model named "nosuch"');
  });
});

describe('models add: the entry a source stands for', () => {
  it('derives the kind, the keys and the name', async () => {
    const { entryFor } = await import('../src/ops/add-source.js');
    expect(entryFor({ source: 'hf:openai/whisper-tiny', revision: 'v1.0', files: ['*.json'] })).toEqual({ name: 'whisper-tiny', entry: { hf: 'openai/whisper-tiny', revision: 'v1.0', files: ['*.json'] } });
    expect(entryFor({ source: 'hf:datasets/acme/voices@main' })).toEqual({ name: 'voices', entry: { hf: 'datasets/acme/voices', revision: 'main' } });
    expect(entryFor({ source: 'oci:ghcr.io/acme/tiny-model:v1' })).toEqual({ name: 'tiny-model', entry: { oci: 'ghcr.io/acme/tiny-model:v1' } });
    expect(entryFor({ source: 'ollama:llama3.2:1b' })).toEqual({ name: 'llama3.2', entry: { ollama: 'llama3.2:1b' } });
    expect(entryFor({ source: 'https://x.example/Vosk Model-0.15.zip' })).toEqual({ name: 'vosk-model-0.15', entry: { url: 'https://x.example/Vosk Model-0.15.zip', extract: 'auto' } });
    expect(() => entryFor({ source: 'oci:ghcr.io/a/b:v1', revision: 'x' })).toThrow('--revision applies to hf: sources only');
  });
});
