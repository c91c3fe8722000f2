import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, matchesPlatform, parseConfig, parsePlatform, resolveRegistry, type ModelEntry } from '../src/project/config.js';
import { ModelsError } from '../src/util/errors.js';

const FILE = '/proj/models.yaml';

function configError(text: string): ModelsError {
  try {
    parseConfig(text, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(ModelsError);
    return error as ModelsError;
  }
  throw new Error('expected parseConfig to fail');
}

function expectError(text: string, line: number, column: number, gist: string | RegExp): ModelsError {
  const error = configError(text);
  expect(error.code).toBe('E_CONFIG');
  expect(error.exitCode).toBe(2);
  expect(error.message.startsWith(`${FILE}:${line}:${column}: `), error.message).toBe(true);
  expect(error.file).toBe(FILE);
  expect(error.line).toBe(line);
  expect(error.column).toBe(column);
  if (typeof gist === 'string') expect(error.message).toContain(gist);
  else expect(error.message).toMatch(gist);
  expect(error.message).not.toContain('\n');
  expect(error.hint).toBeTruthy();
  return error;
}

const HEAD = 'version: 1\nregistry: https://models.example.com\nmodels:\n';

describe('parseConfig: errors with file:line:col', () => {
  it('wrong types', () => {
    expectError(`${HEAD}  vad:\n    model: silero/vad\n    version: 5\n`, 6, 14, 'models.vad.version: expected a string');
    const quoted = expectError(`${HEAD}  vad:\n    model: silero/vad\n    version: 1.0\n`, 6, 14, 'expected a string');
    expect(quoted.hint).toContain('"1.0"');
    expectError(`${HEAD}  vad:\n    model: silero/vad\n    version: v1\n    tags: vision\n`, 7, 11, 'models.vad.tags: expected a list');
    expectError(`${HEAD}  vad: silero/vad\n`, 4, 8, 'models.vad: expected a mapping');
    expectError('version: 1\nregistry: [a]\nmodels: {}\n', 2, 11, 'registry: expected a string');
    expectError('version: 1\nregistry: https://x.example\nmodels: [a]\n', 3, 9, 'models: expected a mapping');
    expectError(`${HEAD}  vad:\n    model: silero/vad\n    version:\n`, 6, 5, 'models.vad.version: expected a string, got nothing');
  });

  it('unknown keys, with a suggestion', () => {
    const e = expectError(
      `${HEAD}  vad:\n    model: silero/vad\n    verison: v1\n`,
      6,
      5,
      'unknown key "verison" (did you mean "version"?)',
    );
    expect(e.hint).toContain('version');
    expectError('version: 1\nregistyr: https://x.example\nmodels: {}\n', 2, 1, 'unknown key "registyr" (did you mean "registry"?)');
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n    color: red\n`, 7, 5, /unknown key "color"$|unknown key "color" \(/);
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n    when: { os: [linux], cpu: [x64] }\n`, 7, 26, 'unknown key "cpu"');
  });

  it('source kinds: exactly one source, and only its own keys', () => {
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n    url: https://x.example/a.onnx\n`, 7, 10, '"model" and "url" name two sources');
    expectError(`${HEAD}  vad:\n    tags: [a]\n`, 4, 3, 'no source: expected one of model (with version), url, hf, oci or ollama');
    expectError(`${HEAD}  vad:\n    model: a/b\n`, 4, 3, 'missing required key "version"');
    expectError(`${HEAD}  vad:\n    url: https://x.example/a.onnx\n    revision: main\n`, 6, 15, '"revision" does not apply to a url: entry');
    expectError(`${HEAD}  vad:\n    hf: org/repo\n    sha256: ${'a'.repeat(64)}\n`, 6, 13, '"sha256" does not apply to a hf: entry');
  });

  it('url: https only (http to loopback), no credentials, a file name, strip only with extract', () => {
    expectError(`${HEAD}  vad:\n    url: http://x.example/a.onnx\n`, 5, 10, 'expected https:// (plain http only to 127.0.0.1');
    expectError(`${HEAD}  vad:\n    url: ftp://x.example/a.onnx\n`, 5, 10, 'expected https://');
    expectError(`${HEAD}  vad:\n    url: https://me:pw@x.example/a.onnx\n`, 5, 10, 'must not contain credentials');
    expectError(`${HEAD}  vad:\n    url: https://x.example/\n`, 5, 10, 'the URL has no file name');
    expectError(`${HEAD}  vad:\n    url: https://x.example/a.onnx\n    file: ../a.onnx\n`, 6, 11, 'must stay inside the model folder');
    expectError(`${HEAD}  vad:\n    url: https://x.example/a.zip\n    strip: 1\n`, 6, 12, '"strip" needs "extract"');
    expectError(`${HEAD}  vad:\n    url: https://x.example/a.zip\n    extract: zip\n    file: b.zip\n`, 7, 11, '"file" and "extract" exclude each other');
    expectError(`${HEAD}  vad:\n    url: https://x.example/a.zip\n    extract: rar\n`, 6, 14, 'expected one of zip, tar, tar.gz, tgz, auto');
    expectError(`${HEAD}  vad:\n    url: https://x.example/a.onnx\n    sha256: ABC\n`, 6, 13, 'models.vad.sha256');
  });

  it('hf:, oci: and ollama: references', () => {
    expectError(`${HEAD}  w:\n    hf: whisper\n`, 5, 9, 'expected <org>/<repo> or datasets/<org>/<repo>');
    expectError(`${HEAD}  w:\n    oci: "ghcr.io/Acme/M:v1"\n`, 5, 10, 'expected HOST/REPO:TAG or HOST/REPO@sha256');
    expectError(`${HEAD}  w:\n    ollama: "llama 3"\n`, 5, 13, 'expected NAME[:TAG]');
  });

  it('bad names, models and enum values', () => {
    expectError(`${HEAD}  Silero_VAD:\n    model: a/b\n    version: v1\n`, 4, 3, 'model name "Silero_VAD": expected lowercase letters');
    expectError(`${HEAD}  -vad:\n    model: a/b\n    version: v1\n`, 4, 3, 'model name "-vad"');
    expectError(`${HEAD}  ${'a'.repeat(65)}:\n    model: a/b\n    version: v1\n`, 4, 3, 'at most 64 characters');
    expectError(`${HEAD}  vad:\n    model: silero\n    version: v1\n`, 5, 12, 'models.vad.model: expected <group>/<model>');
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: "v 1"\n`, 6, 14, 'without spaces');
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n    tags: [Vision]\n`, 7, 12, 'models.vad.tags[0]: expected a tag');
    expectError(
      `${HEAD}  vad:\n    model: a/b\n    version: v1\n    when: { os: [macos] }\n`,
      7,
      18,
      'models.vad.when.os[0]: unknown os "macos" (did you mean "darwin"?)',
    );
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n    when:\n      arch: [x86_64]\n`, 8, 14, 'unknown arch "x86_64" (did you mean "x64"?)');
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n    when: { os: [] }\n`, 7, 17, 'expected at least one item');
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n    tags: [a, b, a]\n`, 7, 18, 'duplicate item "a"');
  });

  it('bad registry schemes', () => {
    const formats = 'expected https://, http:// to a loopback host, file:///abs/path or a plain path';
    expectError('version: 1\nregistry: ftp://x\nmodels: {}\n', 2, 11, `registry "ftp://x": ${formats}`);
    expectError('version: 1\nregistry: http://models.example.com\nmodels: {}\n', 2, 11, 'plain http is allowed only to');
    expectError('version: 1\nregistry: http://10.0.0.1:8080\nmodels: {}\n', 2, 11, 'registry "http://10.0.0.1:8080"');
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n    registry: s3://bucket/x\n`, 7, 15, 'registry "s3://bucket/x"');
    expectError('version: 1\nregistry: https://x.example\nmirrors: [https://ok.example, "gopher://m"]\nmodels: {}\n', 3, 31, 'registry "gopher://m"');
    expectError('version: 1\nregistry: file://relative/reg\nmodels: {}\n', 2, 11, 'three slashes');
    const creds = expectError('version: 1\nregistry: https://user:pw@x.example\nmodels: {}\n', 2, 11, 'must not contain credentials');
    expect(creds.hint).toContain('MODELS_TOKEN');
    expectError('version: 1\nregistry: https://x.example/?token=1\nmodels: {}\n', 2, 11, 'without ?query');
  });

  it('missing registry', () => {
    expectError('version: 1\nmodels:\n  vad:\n    model: a/b\n    version: v1\n', 3, 3, 'models.vad: no registry');
  });

  it('install paths that escape root or collide', () => {
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n    path: ../outside\n`, 7, 11, 'must stay inside the install root');
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n    path: a/../../x\n`, 7, 11, 'must stay inside the install root');
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n    path: /etc/x\n`, 7, 11, 'absolute path');
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n    path: .\n`, 7, 11, 'not the root itself');
    expectError(
      `${HEAD}  vad:\n    model: a/b\n    version: v1\n    path: shared\n  ocr:\n    model: c/d\n    version: v1\n    path: ./shared/\n`,
      11,
      11,
      'install path "shared" is also the install path of "vad"',
    );
    // The default path (the name) collides with another entry's folder.
    expectError(
      `${HEAD}  vad:\n    model: a/b\n    version: v1\n    path: ocr/inner\n  ocr:\n    model: c/d\n    version: v1\n`,
      8,
      3,
      'install path "ocr" overlaps the install path of "vad"',
    );
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n    path: Ocr\n  ocr:\n    model: c/d\n    version: v1\n`, 8, 3, 'is also the install path of "vad"');
  });

  it('root must be a path', () => {
    expectError('version: 1\nroot: https://x.example/models\nmodels: {}\n', 2, 7, 'expected a folder path, not a URL');
    expectError('version: 1\nroot: ~/models\nmodels: {}\n', 2, 7, '"~" is not expanded');
    expectError('version: 1\nroot: ""\nmodels: {}\n', 2, 7, 'root: expected a non-empty string');
  });

  it('YAML syntax errors and duplicate keys', () => {
    expectError('version: 1\nmodels: [a,\n', 3, 1, 'invalid YAML');
    expectError('version: 1\nmodels:\n  vad: {model: a/b\n', 4, 1, 'invalid YAML');
    expectError(`${HEAD}  vad:\n    model: a/b\n    version: v1\n  vad:\n    model: c/d\n    version: v1\n`, 7, 3, 'duplicate key "vad"');
    expectError(`${HEAD}  vad:\n    model: a/b\n    model: c/d\n    version: v1\n`, 6, 5, 'duplicate key "model"');
  });

  it('version must be 1', () => {
    const e = expectError('version: 2\nregistry: https://x.example\nmodels: {}\n', 1, 10, 'version: expected 1, got number 2');
    expect(e.hint).toContain('upgrade');
    expectError('version: "1"\nmodels: {}\n', 1, 10, 'version: expected 1');
    expectError('registry: https://x.example\nmodels: {}\n', 1, 1, 'missing required top-level key "version"');
  });

  it('empty file and non-mapping documents', () => {
    const e = expectError('', 1, 1, 'empty');
    expect(e.hint).toBe('create one: see README');
    expectError('# only a comment\n', 1, 1, 'empty');
    expectError('- a\n- b\n', 1, 1, 'expected a mapping');
  });

  it('reports the first problem in the file and counts the others', () => {
    const e = expectError(`${HEAD}  vad:\n    model: silero\n    version: 5\n`, 5, 12, 'models.vad.model');
    expect(e.message).toContain('(and 1 more problem)');
  });

  it('prefers the misspelt key over the missing one it explains', () => {
    expectError(`${HEAD}  vad:\n    model: a/b\n    verison: v1\n`, 6, 5, 'did you mean "version"');
  });
});

describe('parseConfig: valid configs', () => {
  it('oci: NAME[:TAG] is the Docker Hub reference, tag latest by default', () => {
    const hex = 'a'.repeat(64);
    const config = parseConfig('version: 1\nmodels:\n  a:\n    oci: alpine\n  b:\n    oci: acme/tiny:v1\n  c:\n    oci: docker.io/ubuntu@sha256:' + hex + '\n', '/p/models.yaml');
    expect(config.models.map((m) => (m.source?.kind === 'oci' ? m.source.reference : ''))).toEqual(['docker.io/library/alpine:latest', 'docker.io/acme/tiny:v1', `docker.io/library/ubuntu@sha256:${hex}`]);
  });

  it('every source kind, with no top-level registry when no entry needs one', () => {
    const text = [
      'version: 1',
      'models:',
      '  vad:',
      '    url: https://github.com/snakers4/silero-vad/raw/v5.1/src/silero_vad/data/silero_vad.onnx?download=1',
      '  vosk:',
      '    url: http://127.0.0.1:8080/vosk%20small.zip',
      `    sha256: ${'c'.repeat(64)}`,
      '    extract: auto',
      '    strip: 1',
      '  whisper:',
      '    hf: datasets/openai/whisper-tiny',
      '    files: ["*.json"]',
      '  tiny:',
      '    oci: ghcr.io/acme/tiny-model',
      '  llama:',
      '    ollama: llama3.2:1b',
      '',
    ].join('\n');
    const models = parseConfig(text, FILE).models;
    expect(models.map((m) => [m.name, m.kind, m.model, m.version])).toEqual([
      ['vad', 'url', 'https://github.com/snakers4/silero-vad/raw/v5.1/src/silero_vad/data/silero_vad.onnx?download=1', ''],
      ['vosk', 'url', 'http://127.0.0.1:8080/vosk%20small.zip', 'c'.repeat(64)],
      ['whisper', 'hf', 'hf:datasets/openai/whisper-tiny', 'main'],
      ['tiny', 'oci', 'oci:ghcr.io/acme/tiny-model:latest', 'latest'],
      ['llama', 'oci', 'ollama:llama3.2:1b', '1b'],
    ]);
    expect(models[0]?.source).toEqual({ kind: 'url', url: models[0]?.model, file: 'silero_vad.onnx', strip: 0 });
    expect(models[1]?.source).toEqual({ kind: 'url', url: 'http://127.0.0.1:8080/vosk%20small.zip', file: 'vosk small.zip', sha256: 'c'.repeat(64), extract: 'auto', strip: 1 });
    expect(models[2]?.source).toEqual({ kind: 'hf', repo: 'openai/whisper-tiny', repoType: 'dataset', revision: 'main', files: ['*.json'], exclude: [] });
    expect(models[4]?.source).toMatchObject({ kind: 'oci', reference: 'registry.ollama.ai/library/llama3.2:1b', ollama: 'llama3.2:1b' });
  });

  it('every optional field', () => {
    const text = [
      '# yaml-language-server: $schema=./node_modules/xprim-models/schema/models.schema.json',
      'version: 1',
      'registry: https://models.example.com/',
      'mirrors: [https://mirror.example.com/base/, http://127.0.0.1:8080, "http://[::1]:9000/r", http://localhost/x, file:///srv/reg]',
      'root: vendor/models',
      'models:',
      '  vad:',
      '    model: silero/vad',
      '    version: latest',
      '  ocr:',
      '    model: paddle/ocr',
      '    version: "4.0"',
      '    registry: http://127.1.2.3:5000/reg/',
      '    path: vision\\ocr/',
      '    tags: [vision, ocr]',
      '    when: { os: [linux, darwin], arch: [x64, arm64] }',
      '',
    ].join('\n');
    const config = parseConfig(text, FILE);
    expect(config.file).toBe(FILE);
    expect(config.dir).toBe('/proj');
    expect(config.root).toBe('/proj/vendor/models');
    expect(config.mirrors).toEqual([
      'https://mirror.example.com/base',
      'http://127.0.0.1:8080',
      'http://[::1]:9000/r',
      'http://localhost/x',
      'file:///srv/reg',
    ]);
    expect(config.models).toEqual([
      {
        name: 'vad',
        kind: 'xprim',
        model: 'silero/vad',
        version: 'latest',
        registry: 'https://models.example.com',
        registryUrl: 'https://models.example.com',
        path: 'vad',
        tags: [],
        line: 7,
      },
      {
        name: 'ocr',
        kind: 'xprim',
        model: 'paddle/ocr',
        version: '4.0',
        registry: 'http://127.1.2.3:5000/reg',
        registryUrl: 'http://127.1.2.3:5000/reg',
        path: 'vision/ocr',
        tags: ['vision', 'ocr'],
        when: { os: ['linux', 'darwin'], arch: ['x64', 'arm64'] },
        line: 10,
      },
    ]);
  });

  it('minimal config: default root, empty models', () => {
    const config = parseConfig('version: 1\nmodels: {}\n', '/a/b/models.yaml');
    expect(config).toEqual({ file: '/a/b/models.yaml', dir: '/a/b', mirrors: [], root: '/a/b/models', models: [] });
  });

  it('absolute root stays absolute', () => {
    expect(parseConfig('version: 1\nroot: /opt/models/\nmodels: {}\n', FILE).root).toBe('/opt/models');
  });

  it('relative registry paths resolve against the file folder, and stay as written for the lock', () => {
    const config = parseConfig(
      'version: 1\nregistry: ../registry/\nmodels:\n  a:\n    model: g/a\n    version: v1\n  b:\n    model: g/b\n    version: v1\n    registry: ./local reg\n',
      '/work/proj/models.yaml',
    );
    const [a, b] = config.models as [ModelEntry, ModelEntry];
    expect(a.registry).toBe('../registry');
    expect(a.registryUrl).toBe('file:///work/registry');
    expect(b.registry).toBe('./local reg');
    expect(b.registryUrl).toBe('file:///work/proj/local%20reg');
  });

  it('a relative file name resolves against the working directory', () => {
    const config = parseConfig('version: 1\nregistry: reg\nmodels: {}\n', 'sub/models.yaml');
    expect(config.file).toBe(join(process.cwd(), 'sub/models.yaml'));
    expect(config.dir).toBe(join(process.cwd(), 'sub'));
  });
});

describe('resolveRegistry', () => {
  it('accepts the four forms and normalises them', () => {
    expect(resolveRegistry('https://Models.Example.com/a/', '/x', 'w')).toBe('https://models.example.com/a');
    expect(resolveRegistry('http://localhost:1234', '/x', 'w')).toBe('http://localhost:1234');
    expect(resolveRegistry('file:///srv/r/', '/x', 'w')).toBe('file:///srv/r');
    expect(resolveRegistry('reg', '/x/y', 'w')).toBe('file:///x/y/reg');
    expect(resolveRegistry('/abs/reg', '/x/y', 'w')).toBe('file:///abs/reg');
  });

  it('names where the value came from', () => {
    try {
      resolveRegistry('http://mirror.corp', '/x', 'MODELS_MIRRORS');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ModelsError);
      expect((error as ModelsError).code).toBe('E_CONFIG');
      expect((error as ModelsError).message).toMatch(/^MODELS_MIRRORS: registry "http:\/\/mirror.corp": expected https:\/\//);
    }
  });
});

describe('loadConfig', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xprim-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file and resolves a relative registry against its folder', async () => {
    await mkdir(join(dir, 'proj'), { recursive: true });
    const file = join(dir, 'proj', 'models.yaml');
    await writeFile(file, 'version: 1\nregistry: ../reg\nmodels:\n  vad:\n    model: a/b\n    version: v1\n');
    const config = await loadConfig(file);
    expect(config.models[0]?.registryUrl).toBe(pathToFileURL(join(dir, 'reg')).href);
    expect(config.root).toBe(join(dir, 'proj', 'models'));
  });

  it('a missing file is E_CONFIG with the README hint', async () => {
    const file = join(dir, 'nope', 'models.yaml');
    await expect(loadConfig(file)).rejects.toMatchObject({ code: 'E_CONFIG', hint: 'create one: see README', exitCode: 2 });
    await expect(loadConfig(file)).rejects.toThrow(file);
  });
});

describe('platforms', () => {
  const entry = (when?: ModelEntry['when']): ModelEntry => ({
    name: 'x',
    kind: 'xprim',
    model: 'a/b',
    version: 'v1',
    registry: 'r',
    registryUrl: 'file:///r',
    path: 'x',
    tags: [],
    line: 1,
    ...(when ? { when } : {}),
  });

  it('matchesPlatform', () => {
    const linux = { os: 'linux', arch: 'x64' };
    expect(matchesPlatform(entry(), linux)).toBe(true);
    expect(matchesPlatform(entry({ os: ['linux', 'darwin'] }), linux)).toBe(true);
    expect(matchesPlatform(entry({ os: ['darwin'] }), linux)).toBe(false);
    expect(matchesPlatform(entry({ arch: ['arm64'] }), linux)).toBe(false);
    expect(matchesPlatform(entry({ os: ['linux'], arch: ['arm64'] }), linux)).toBe(false);
    expect(matchesPlatform(entry({ os: ['linux'], arch: ['x64'] }), linux)).toBe(true);
    expect(matchesPlatform(entry({}), linux)).toBe(true);
  });

  it('parsePlatform', () => {
    expect(parsePlatform('linux-x64')).toEqual({ os: 'linux', arch: 'x64' });
    expect(parsePlatform('darwin-arm64')).toEqual({ os: 'darwin', arch: 'arm64' });
    expect(parsePlatform('win32-x64')).toEqual({ os: 'win32', arch: 'x64' });
    for (const bad of ['linux', 'linux-', 'macos-arm64', 'linux-amd64', 'linux-x64-gnu', '']) {
      expect(() => parsePlatform(bad), bad).toThrow(ModelsError);
      try {
        parsePlatform(bad);
      } catch (error) {
        expect((error as ModelsError).code).toBe('E_USAGE');
      }
    }
    expect(() => parsePlatform('macos-aarch64')).toThrow('did you mean "darwin-arm64"?');
  });
});

describe('schema/models.schema.json', () => {
  it('is a valid draft-07 schema with $id, title and a description on every property', async () => {
    const schema = JSON.parse(await readFile(new URL('../schema/models.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    expect(schema.$id).toMatch(/^https:\/\//);
    expect(schema.title).toBeTruthy();
    new Ajv({ strict: true }).compile(schema);
    const missing: string[] = [];
    const walk = (node: unknown, where: string) => {
      if (typeof node !== 'object' || node === null) return;
      const properties = (node as { properties?: Record<string, unknown> }).properties;
      for (const [key, value] of Object.entries(properties ?? {})) {
        if (!(value as { description?: string }).description) missing.push(`${where}.${key}`);
        walk(value, `${where}.${key}`);
      }
      for (const [key, value] of Object.entries(node)) if (key !== 'properties') walk(value, `${where}/${key}`);
    };
    walk(schema, '');
    expect(missing).toEqual([]);
  });
});
