/**
 * The npm package as a consumer gets it: what `npm pack` ships, that everything it imports is a
 * declared runtime dependency (the Action's @actions/* tree is bundled into dist/ and stays a dev
 * dependency), the licence and the repository links the README's relative links resolve against,
 * and how the CLI's launcher starts Node.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO } from './support/cli.js';

const run = promisify(execFile);
const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as {
  license: string;
  repository?: { url: string };
  homepage?: string;
  dependencies: Record<string, string>;
};

async function packedFiles(): Promise<string[]> {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO, maxBuffer: 16 << 20 });
  return (JSON.parse(stdout) as [{ files: { path: string }[] }])[0].files.map((f) => f.path);
}

/** The package names a JavaScript file imports (static and dynamic), without node: built-ins or relative paths. */
function bareImports(source: string): string[] {
  const specifiers = [...source.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)].map((m) => m[1] as string);
  return specifiers
    .filter((s) => !s.startsWith('.') && !s.startsWith('node:') && !builtinModules.includes(s))
    .map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : (s.split('/')[0] as string)));
}

describe('the npm package', () => {
  it('ships the licence, the README, the CLI, the library and the schema, and not the Action sources', async () => {
    const files = await packedFiles();
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'bin/models.js', 'lib/index.js', 'lib/runtime/index.js', 'schema/models.schema.json']));
    expect(files.filter((f) => f.startsWith('lib/action/') || f.startsWith('test/') || f.startsWith('dist/'))).toEqual([]);
    expect(await readFile(join(REPO, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
    expect(pkg.license).toBe('MIT');
  });

  it('imports nothing at run time that is not a declared dependency; @actions/* is only in the bundled Action', async () => {
    const shipped = (await packedFiles()).filter((f) => f.endsWith('.js'));
    // The bundled CLI (scripts/bundle-cli.mjs) carries its dependencies inside: its own top-level
    // imports are only Node built-ins and its chunks (the scan below would read bundled code's strings).
    const bundled = shipped.filter((f) => f.startsWith('lib/cli-bundle/'));
    expect(bundled).toContain('lib/cli-bundle/index.js');
    for (const file of bundled) {
      const lines = (await readFile(join(REPO, file), 'utf8')).split('\n').filter((l) => /^(import|export) .* from "/.test(l));
      expect(lines.flatMap((l) => bareImports(l)), file).toEqual([]);
    }
    const imported = new Set<string>();
    for (const file of shipped.filter((f) => !bundled.includes(f))) for (const name of bareImports(await readFile(join(REPO, file), 'utf8'))) imported.add(name);
    expect([...imported].filter((name) => !(name in pkg.dependencies))).toEqual([]);
    expect(Object.keys(pkg.dependencies).filter((name) => name.startsWith('@actions/'))).toEqual([]);
  });

  it('names its repository and homepage, and every relative README link points at a file in the repository', async () => {
    expect(pkg.repository?.url).toMatch(/^git\+https:\/\/github\.com\/[^/]+\/xprim-models\.git$/);
    expect(pkg.homepage).toMatch(/^https:\/\/github\.com\//);
    const readme = await readFile(join(REPO, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1] as string).filter((l) => !/^[a-z]+:/.test(l));
    expect(links.length).toBeGreaterThan(3);
    expect(links.filter((l) => l.startsWith('..') || !existsSync(join(REPO, l)))).toEqual([]);
  });
});

describe('the CLI launcher (bin/models.js)', () => {
  // libuv's pool starts all its threads at once, so an idle run's thread count shows its size.
  const threadsOf = async (env: NodeJS.ProcessEnv): Promise<number> => {
    // A registry that accepts connections and never answers: `models lock` waits for its headers.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const dir = await mkdtemp(join(tmpdir(), 'xprim-launcher-'));
    await writeFile(join(dir, 'models.yaml'), `version: 1\nregistry: http://127.0.0.1:${port}\nmodels:\n  m:\n    model: a/b\n    version: v1\n`);
    const child = spawn(process.execPath, [join(REPO, 'bin', 'models.js'), 'lock'], { cwd: dir, env: { ...process.env, CI: 'true', MODELS_CACHE_DIR: join(dir, 'cache'), ...env }, stdio: 'ignore' });
    try {
      await new Promise<void>((resolve) => silent.once('connection', () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 300));
      return (await readdir(`/proc/${child.pid}/task`)).length;
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('close', resolve));
      silent.close();
      await rm(dir, { recursive: true, force: true });
    }
  };

  it.skipIf(process.platform !== 'linux')('sizes libuv thread pool to the cores (2 to 4) unless UV_THREADPOOL_SIZE says otherwise', async () => {
    const one = await threadsOf({ UV_THREADPOOL_SIZE: '1' });
    const six = await threadsOf({ UV_THREADPOOL_SIZE: '6' });
    const chosen = await threadsOf({ UV_THREADPOOL_SIZE: undefined });
    expect(six - one).toBe(5);
    expect(chosen - one + 1).toBe(Math.max(2, Math.min(4, availableParallelism())));
  }, 30_000);
});
