/**
 * examples/installer/package.mjs end to end: stage the repo's demo models for two platforms, each
 * root with its integrity file, and run the runtime readiness check (full mode) on each.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadProject, lock } from '../src/index.js';
import { checkModels } from '../src/runtime/index.js';

const ROOT = join(import.meta.dirname, '..');
const SCRIPT = join(ROOT, 'examples', 'installer', 'package.mjs');

const temps: string[] = [];
afterEach(async () => {
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'xprim-installer-'));
  temps.push(dir);
  return dir;
}

function runScript(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', CI: '1', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const sha = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

describe('examples/installer/package.mjs', () => {
  it('stages the demo models for linux-x64 and win32-x64, each with an integrity file, and reports them ready', async () => {
    const dir = await tempDir();
    const out = join(dir, 'out');
    const result = await runScript(['--out', out], { MODELS_CACHE_DIR: join(dir, 'cache') });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.match(/Models: READY \(2 of 2 ready\)/g)).toHaveLength(2);
    expect(result.stdout).toMatch(/stt\s+ready\s+vad/);

    const project = await loadProject(join(ROOT, 'models.yaml'));
    for (const platform of ['linux-x64', 'win32-x64']) {
      const root = join(out, platform, 'models');
      const integrity = JSON.parse(await readFile(join(root, 'models.integrity.json'), 'utf8')) as { models: Record<string, { manifest: string; files: { path: string; size: number; sha256: string }[] }> };
      expect(Object.keys(integrity.models).sort()).toEqual(['vad', 'wakeword']);
      for (const [name, locked] of Object.entries(project.lock!.models)) {
        expect(integrity.models[name]!.manifest).toBe(locked.manifest);
        for (const file of locked.files) {
          const bytes = await readFile(join(root, name, file.path));
          expect([file.path, bytes.length, sha(bytes)]).toEqual([file.path, file.size, file.sha256]);
        }
      }
      const report = await checkModels(root, { mode: 'full' });
      expect(report.ready).toBe(true);
      expect(report.isReady('stt')).toBe(true);
    }

    // Again: everything is staged already, nothing is fetched, still ready.
    const again = await runScript(['--out', out], { MODELS_CACHE_DIR: join(dir, 'cache') });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('installed: -; up to date: vad, wakeword');
  });

  it('stages `when:` entries per platform, and stops with the CLI exit code on a stale lock', async () => {
    const dir = await tempDir();
    const config = join(dir, 'models.yaml');
    const registry = join(ROOT, 'demo', 'registry');
    await writeFile(
      config,
      `version: 1\nregistry: ${registry}\nmodels:\n  vad:\n    model: demo/silero-vad\n    version: latest\n    tags: [stt]\n  wakeword:\n    model: demo/openwakeword\n    version: latest\n    when: { os: [win32] }\n`,
    );
    const out = join(dir, 'out');
    const env = { MODELS_CACHE_DIR: join(dir, 'cache') };
    const stale = await runScript(['--out', out, '--config', config], env);
    expect(stale.code).toBe(8);
    expect(stale.stderr).toContain('models.lock');

    await lock(await loadProject(config), { cacheDir: env.MODELS_CACHE_DIR });
    const result = await runScript(['--out', out, '--config', config, '--platforms', 'linux-x64,win32-x64'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const linux = await checkModels(join(out, 'linux-x64', 'models'), { mode: 'full' });
    const windows = await checkModels(join(out, 'win32-x64', 'models'), { mode: 'full' });
    expect(Object.keys(linux.models)).toEqual(['vad']);
    expect(Object.keys(windows.models).sort()).toEqual(['vad', 'wakeword']);
    expect(windows.ready && linux.ready).toBe(true);
  });
});
