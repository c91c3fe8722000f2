import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { checkModels, modelPath, ReadinessError } from '../src/runtime/index.js';

const run = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

interface FixtureFile {
  path: string;
  bytes: Buffer;
}
interface FixtureModel {
  path: string;
  tags: string[];
  files: FixtureFile[];
}

const fixture: Record<string, FixtureModel> = {
  vad: { path: 'silero-vad', tags: ['stt'], files: [{ path: 'silero_vad.onnx', bytes: randomBytes(4096) }] },
  whisper: {
    path: 'speech/whisper',
    tags: ['stt'],
    files: [
      { path: 'model.bin', bytes: randomBytes(3000) },
      { path: 'config/tokenizer.json', bytes: Buffer.from('{"vocab":[]}') },
      { path: 'empty.txt', bytes: Buffer.alloc(0) },
    ],
  },
  llm: { path: 'llm', tags: ['llm'], files: [{ path: 'qwen.gguf', bytes: randomBytes(5000) }] },
};

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Install the fixture into `root` and write its integrity file, as `models install --root` would. */
async function install(root: string, mutate?: (doc: { integrityVersion: number; models: Record<string, Record<string, unknown>> }) => void): Promise<string> {
  const models: Record<string, Record<string, unknown>> = {};
  for (const [name, m] of Object.entries(fixture)) {
    const files = [];
    for (const f of m.files) {
      const abs = join(root, m.path, f.path);
      await mkdir(dirname(abs), { recursive: true });
      await writeFile(abs, f.bytes);
      files.push({ path: f.path, size: f.bytes.length, sha256: sha(f.bytes), mtimeMs: (await stat(abs)).mtimeMs });
    }
    models[name] = {
      model: `demo/${name}`,
      version: 'latest',
      resolved: '1.0.0',
      manifest: sha(Buffer.from(name)),
      path: m.path,
      tags: m.tags,
      size: m.files.reduce((s, f) => s + f.bytes.length, 0),
      files,
    };
  }
  const doc = { integrityVersion: 1, generator: 'xprim-models 0.1.0', models };
  mutate?.(doc);
  const file = join(root, 'models.integrity.json');
  await writeFile(file, JSON.stringify(doc, null, 2));
  return file;
}

async function flipByte(path: string, at: number): Promise<void> {
  const bytes = await readFile(path);
  bytes[at] = (bytes[at] as number) ^ 0xff;
  // Keep the mtime, as a bit-rot or a same-size tamper would.
  const { atime, mtime } = await stat(path);
  await writeFile(path, bytes);
  await utimes(path, atime, mtime);
}

async function rejection(promise: Promise<unknown>): Promise<ReadinessError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ReadinessError);
    return error as ReadinessError;
  }
  throw new Error('expected a rejection');
}

function thrown(fn: () => unknown): ReadinessError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ReadinessError);
    return error as ReadinessError;
  }
  throw new Error('expected a throw');
}

let base: string;
let root: string;
let integrityFile: string;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'xprim-runtime-'));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});
beforeEach(async () => {
  root = await mkdtemp(join(base, 'root-'));
  integrityFile = await install(root);
});

describe('checkModels', () => {
  it('reports everything ready in fast and full mode, from the root or the integrity file', async () => {
    for (const mode of ['fast', 'full'] as const) {
      for (const where of [root, integrityFile]) {
        const report = await checkModels(where, { mode });
        expect(report.ready).toBe(true);
        expect(Object.keys(report.models).sort()).toEqual(['llm', 'vad', 'whisper']);
        expect(report.models.whisper).toMatchObject({
          name: 'whisper',
          model: 'demo/whisper',
          version: 'latest',
          resolved: '1.0.0',
          tags: ['stt'],
          state: 'ready',
          path: join(root, 'speech', 'whisper'),
        });
        expect(report.models.whisper?.files.map((f) => f.state)).toEqual(['ready', 'ready', 'ready']);
        expect(report.tags).toEqual({ llm: 'ready', stt: 'ready' });
      }
    }
  });

  it('reports a deleted file as missing, in both modes', async () => {
    await unlink(join(root, 'speech/whisper/model.bin'));
    for (const mode of ['fast', 'full'] as const) {
      const report = await checkModels(root, { mode });
      expect(report.ready).toBe(false);
      expect(report.models.whisper?.state).toBe('missing');
      expect(report.models.whisper?.files[0]).toEqual({ path: 'model.bin', state: 'missing', reason: 'not found' });
      expect(report.models.whisper?.files[1]?.state).toBe('ready');
      expect(report.models.vad?.state).toBe('ready');
    }
  });

  it('reports a whole missing model folder as missing', async () => {
    await rm(join(root, 'llm'), { recursive: true });
    const report = await checkModels(root);
    expect(report.models.llm?.state).toBe('missing');
    expect(report.models.llm?.files).toEqual([{ path: 'qwen.gguf', state: 'missing', reason: 'not found' }]);
  });

  it('misses a same-size byte flip in fast mode and catches it in full mode', async () => {
    await flipByte(join(root, 'silero-vad/silero_vad.onnx'), 1234);
    const fast = await checkModels(root, { mode: 'fast' });
    expect(fast.models.vad?.state).toBe('ready');
    const full = await checkModels(root, { mode: 'full', concurrency: 1 });
    expect(full.ready).toBe(false);
    expect(full.models.vad?.state).toBe('corrupt');
    expect(full.models.vad?.files[0]).toEqual({ path: 'silero_vad.onnx', state: 'corrupt', reason: 'sha256 mismatch' });
    expect(full.models.whisper?.state).toBe('ready');
  });

  it('reports a size change as corrupt in fast mode', async () => {
    await truncate(join(root, 'llm/qwen.gguf'), 10);
    const report = await checkModels(root);
    expect(report.models.llm?.state).toBe('corrupt');
    expect(report.models.llm?.files[0]).toEqual({ path: 'qwen.gguf', state: 'corrupt', reason: 'size 10 != 5000' });
  });

  it('aggregates tags: stt ready while llm is missing', async () => {
    await unlink(join(root, 'llm/qwen.gguf'));
    const report = await checkModels(root);
    expect(report.ready).toBe(false);
    expect(report.tags).toEqual({ llm: 'missing', stt: 'ready' });
    expect(report.isReady('stt')).toBe(true);
    expect(report.isReady('llm')).toBe(false);
    expect(report.isReady('vad')).toBe(true);
    expect(report.isReady('no-such-thing')).toBe(false);
    expect(report.isReady('__proto__')).toBe(false);
  });

  it('makes a tag corrupt when any of its models is corrupt, even if another is missing', async () => {
    await unlink(join(root, 'silero-vad/silero_vad.onnx'));
    await truncate(join(root, 'speech/whisper/model.bin'), 1);
    const report = await checkModels(root);
    expect(report.models.vad?.state).toBe('missing');
    expect(report.models.whisper?.state).toBe('corrupt');
    expect(report.tags.stt).toBe('corrupt');
    expect(report.tags.llm).toBe('ready');
  });

  it('ignores mtime by default and reports a changed one when checkMtime is set', async () => {
    const file = join(root, 'llm/qwen.gguf');
    const later = new Date(Date.now() + 3_600_000);
    await utimes(file, later, later);
    expect((await checkModels(root)).models.llm?.state).toBe('ready');
    const report = await checkModels(root, { checkMtime: true });
    expect(report.models.llm?.state).toBe('corrupt');
    expect(report.models.llm?.files[0]?.reason).toMatch(/^mtime changed/);
    // Files whose mtime was kept stay ready under checkMtime.
    expect(report.models.vad?.state).toBe('ready');
    expect(report.toText()).toContain('modified after install');
  });

  it('checks only the named models or tags, and refuses unknown ones', async () => {
    await unlink(join(root, 'llm/qwen.gguf'));
    const stt = await checkModels(root, { only: ['stt'] });
    expect(Object.keys(stt.models).sort()).toEqual(['vad', 'whisper']);
    expect(stt.tags).toEqual({ stt: 'ready' });
    expect(stt.ready).toBe(true);
    const byName = await checkModels(root, { only: ['llm'] });
    expect(Object.keys(byName.models)).toEqual(['llm']);
    expect(byName.ready).toBe(false);
    const error = await rejection(checkModels(root, { only: ['whisperr'] }));
    expect(error.code).toBe('E_UNKNOWN_MODEL');
    expect(error.message).toContain('"whisperr"');
    expect(error.message).toContain('known: llm, vad, whisper');
  });

  it('renders a plain-text report with aligned columns, every model, every tag and a hint per problem', async () => {
    await unlink(join(root, 'llm/qwen.gguf'));
    await truncate(join(root, 'silero-vad/silero_vad.onnx'), 7);
    const text = (await checkModels(root)).toText();
    expect(text).toContain('NOT READY (2 of 3 need attention)');
    expect(text).toContain(integrityFile);
    const lines = text.split('\n');
    const header = lines.findIndex((l) => l.startsWith('MODEL '));
    const modelRows = lines.slice(header, lines.indexOf('', header));
    expect(modelRows.map((l) => l.split(' ')[0])).toEqual(['MODEL', 'llm', 'vad', 'whisper']);
    // Aligned: the STATE column starts at the same offset on every row.
    const column = modelRows[0]?.indexOf('STATE');
    for (const row of modelRows.slice(1)) expect(row.indexOf(row.includes('ready') ? 'ready' : row.includes('missing') ? 'missing' : 'corrupt')).toBe(column);
    expect(lines.find((l) => l.startsWith('llm ') && l.includes('missing'))).toBeDefined();
    expect(lines.find((l) => l.startsWith('vad ') && l.includes('corrupt'))).toBeDefined();
    expect(lines.some((l) => /^stt\s+corrupt\s+vad,whisper$/.test(l))).toBe(true);
    expect(lines.some((l) => /^llm\s+missing\s+llm$/.test(l))).toBe(true);
    expect(text).toContain('qwen.gguf: not found');
    expect(text).toContain('silero_vad.onnx: size 7 != 4096');
    expect(text).toContain(`hint: run: models install --frozen --root ${root} (developer machine), or reinstall the app`);
    expect(text).toContain(`hint: run: models install --frozen --root ${root} --verify to repair`);
    const ok = await install(await mkdtemp(join(base, 'ok-')));
    const healthy = (await checkModels(ok)).toText();
    expect(healthy).toContain('READY (3 of 3 ready)');
    expect(healthy).not.toContain('hint:');
  });

  it('counts a symlink that escapes the root as corrupt, and follows one that stays inside', async () => {
    const outside = join(base, `outside-${Date.now()}.bin`);
    const vad = fixture.vad?.files[0]?.bytes as Buffer;
    await writeFile(outside, vad);
    const target = join(root, 'silero-vad/silero_vad.onnx');
    await unlink(target);
    await symlink(outside, target);
    const full = await checkModels(root, { mode: 'full' });
    expect(full.models.vad?.state).toBe('corrupt');
    expect(full.models.vad?.files[0]?.reason).toMatch(/outside the install root/);
    expect(full.toText()).toContain('a symlink points outside');

    await unlink(target);
    await writeFile(join(root, 'shared.bin'), vad);
    await symlink(join(root, 'shared.bin'), target);
    expect((await checkModels(root, { mode: 'full' })).models.vad?.state).toBe('ready');
  });

  it('counts a model folder symlinked outside the root as corrupt', async () => {
    const elsewhere = await mkdtemp(join(base, 'elsewhere-'));
    await writeFile(join(elsewhere, 'qwen.gguf'), fixture.llm?.files[0]?.bytes as Buffer);
    await rm(join(root, 'llm'), { recursive: true });
    await symlink(elsewhere, join(root, 'llm'));
    const report = await checkModels(root, { mode: 'full' });
    expect(report.models.llm?.state).toBe('corrupt');
  });

  it('throws ReadinessError E_NOT_INSTALLED naming the file when there is no integrity file', async () => {
    const empty = await mkdtemp(join(base, 'empty-'));
    const error = await rejection(checkModels(empty));
    expect(error.code).toBe('E_NOT_INSTALLED');
    expect(error.exitCode).toBe(4);
    expect(error.file).toBe(join(empty, 'models.integrity.json'));
    expect(error.message).toContain(join(empty, 'models.integrity.json'));
    expect(error.message).toContain('models install --frozen');
    expect(error.message).not.toContain('\n');
    expect(thrown(() => modelPath(empty, 'vad')).code).toBe('E_NOT_INSTALLED');
  });

  it('throws ReadinessError E_INTEGRITY_FILE for a malformed integrity file', async () => {
    await writeFile(integrityFile, '{\n  "integrityVersion": 1,\n  "models": {,}\n}');
    const error = await rejection(checkModels(root));
    expect(error.code).toBe('E_INTEGRITY_FILE');
    expect(error.message).toContain(integrityFile);
    expect(error.message).toMatch(/not valid JSON at line 3, column 14/);
    expect(error.message).toContain('reinstall the app');
    expect(thrown(() => modelPath(root, 'vad')).code).toBe('E_INTEGRITY_FILE');

    const cases: [unknown, RegExp][] = [
      [[], /expected a JSON object/],
      [{ integrityVersion: 2, models: {} }, /integrityVersion 2; this runtime reads version 1.*upgrade/],
      [{ integrityVersion: '1', models: {} }, /integrityVersion must be 1/],
      [{ integrityVersion: 1 }, /"models" must be an object/],
      [{ integrityVersion: 1, models: { Bad: {} } }, /model name must match/],
      [{ integrityVersion: 1, models: { a: { model: 'x/y', version: 'v', resolved: 'v', manifest: 'nope', path: 'a', files: [] } } }, /models\.a\.manifest/],
      [{ integrityVersion: 1, models: { a: { model: 'x/y', version: 'v', resolved: 'v', manifest: 'a'.repeat(64), path: 'a', files: [{ path: 'f', size: -1 }] } } }, /files\[0\] "f": size/],
      [{ integrityVersion: 1, models: { a: { model: 'x/y', version: 'v', resolved: 'v', manifest: 'a'.repeat(64), path: 'a', files: [{ path: 'f', size: 1 }, { path: 'F', size: 1 }] } } }, /appears twice/],
    ];
    for (const [doc, pattern] of cases) {
      await writeFile(integrityFile, JSON.stringify(doc));
      const e = await rejection(checkModels(root));
      expect(e.code).toBe('E_INTEGRITY_FILE');
      expect(e.message).toContain(integrityFile);
      expect(e.message).toMatch(pattern);
    }
  });

  it('refuses hostile paths in the integrity file without reading outside the root', async () => {
    // A real file outside the root, of the right size and hash: a check that followed the path would call it ready.
    const secret = Buffer.from('outside the root');
    await writeFile(join(base, 'secret.bin'), secret);
    const hostile: [string, (doc: { models: Record<string, Record<string, unknown>> }) => void][] = [
      ['model path ..', (doc) => void ((doc.models.vad as Record<string, unknown>).path = '..')],
      ['model path ../x', (doc) => void ((doc.models.vad as Record<string, unknown>).path = 'silero-vad/../..')],
      ['absolute model path', (doc) => void ((doc.models.vad as Record<string, unknown>).path = base)],
      ['backslash', (doc) => void ((doc.models.vad as Record<string, unknown>).path = '..\\..')],
      [
        'file path ../',
        (doc) =>
          void ((doc.models.vad as Record<string, unknown>).files = [{ path: '../../secret.bin', size: secret.length, sha256: sha(secret) }]),
      ],
    ];
    for (const [label, mutate] of hostile) {
      await install(root, mutate);
      const error = await rejection(checkModels(root, { mode: 'full' }));
      expect(error.code, label).toBe('E_INTEGRITY_FILE');
      expect(error.message, label).toMatch(/models\.vad\.(path|files\[0\]\.path) .*(segment|absolute|backslash)/);
      expect(thrown(() => modelPath(root, 'whisper')).code, label).toBe('E_INTEGRITY_FILE');
    }
  });

  it('stops with E_ABORTED when the signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await rejection(checkModels(root, { mode: 'full', signal: controller.signal }));
    expect(error.code).toBe('E_ABORTED');
  });

  it('refuses bad options', async () => {
    expect((await rejection(checkModels(root, { concurrency: 0 }))).code).toBe('E_USAGE');
    expect((await rejection(checkModels(root, { mode: 'slow' as 'fast' }))).code).toBe('E_USAGE');
  });
});

describe('modelPath', () => {
  it('returns the absolute folder of a model, from the root or the integrity file', () => {
    expect(modelPath(root, 'whisper')).toBe(join(root, 'speech', 'whisper'));
    expect(modelPath(integrityFile, 'vad')).toBe(join(root, 'silero-vad'));
  });

  it('throws a clear ReadinessError for an unknown name', () => {
    const error = thrown(() => modelPath(root, 'tts'));
    expect(error.code).toBe('E_UNKNOWN_MODEL');
    expect(error.message).toBe(
      `no model named "tts" in ${integrityFile} (known: llm, vad, whisper; tags: llm, stt) (add it to models.yaml and run: models install --frozen, or reinstall the app)`,
    );
  });
});

describe('dependency-free import graph', () => {
  let out: string;

  beforeAll(async () => {
    // Compile only this module: the rest of the project may not compile while others work on it.
    out = await mkdtemp(join(base, 'compiled-'));
    await run(process.execPath, [
      join(repo, 'node_modules/typescript/bin/tsc'),
      join(repo, 'src/runtime/index.ts'),
      '--outDir', out,
      '--module', 'nodenext',
      '--moduleResolution', 'nodenext',
      '--target', 'es2022',
      '--strict',
      '--skipLibCheck',
      '--types', 'node',
    ]);
    // The output folder is outside the package, so it needs its own "type": "module".
    await writeFile(join(out, 'package.json'), '{"type":"module"}');
  });

  it('imports only node: built-ins, statically', async () => {
    const seen = new Set<string>();
    const specifiers: string[] = [];
    const walk = async (file: string): Promise<void> => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = await readFile(file, 'utf8');
      for (const m of source.matchAll(/(?:^|[;\n])\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm)) {
        const spec = (m[1] ?? m[2] ?? m[3]) as string;
        specifiers.push(spec);
        if (spec.startsWith('.')) await walk(join(dirname(file), spec));
      }
    };
    await walk(join(out, 'index.js'));
    expect(specifiers).toContain('node:crypto');
    // The module's own files (./name.js, walked above) and node: built-ins; nothing else, not even ../ of this repo.
    expect(specifiers.filter((s) => !s.startsWith('node:') && !/^\.\/[\w-]+\.js$/.test(s))).toEqual([]);
  });

  it('loads and runs in a child node process without resolving undici, listr2, ajv or yaml', async () => {
    const log = join(out, 'resolved.log');
    await writeFile(
      join(out, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(log, specifier + ' -> ' + result.url + '\\n');
  return result;
}
`,
    );
    await writeFile(
      join(out, 'register.mjs'),
      `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(join(out, 'hooks.mjs')).href)}, { data: { log: ${JSON.stringify(log)} } });
`,
    );
    const code = `const m = await import(${JSON.stringify(pathToFileURL(join(out, 'index.js')).href)});
const r = await m.checkModels(${JSON.stringify(root)}, { mode: 'full' });
console.log(JSON.stringify({ ready: r.ready, stt: r.isReady('stt'), path: m.modelPath(${JSON.stringify(root)}, 'vad') }));`;
    const { stdout } = await run(
      process.execPath,
      ['--import', pathToFileURL(join(out, 'register.mjs')).href, '--input-type=module', '-e', code],
      { cwd: repo },
    );
    expect(JSON.parse(stdout)).toEqual({ ready: true, stt: true, path: join(root, 'silero-vad') });
    const resolved = (await readFile(log, 'utf8')).trim().split('\n');
    // The hook saw the module itself, so an empty list would not pass for a clean graph.
    expect(resolved.some((l) => l.endsWith('/index.js'))).toBe(true);
    expect(resolved.some((l) => l.startsWith('node:fs'))).toBe(true);
    const urls = resolved.map((l) => l.split(' -> ')[1] as string);
    const outUrl = pathToFileURL(out).href;
    expect(urls.filter((u) => !u.startsWith('node:') && !u.startsWith(outUrl))).toEqual([]);
    expect(resolved.filter((l) => /undici|listr2|ajv|yaml/.test(l))).toEqual([]);
  });
});
