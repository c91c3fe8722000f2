/**
 * "Never lose data" (issue 10): the tool deletes or replaces only what its own records say it
 * wrote, checked against the disk; the cache never follows symlinks and never spreads a changed
 * file into another project. Real folders, real symlinks, a real shared cache used by two
 * projects, the CLI as a child process.
 */
import { spawnSync } from 'node:child_process';
import { cp, lstat, mkdir, readFile, readdir, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RegistryServer, startRegistryServer } from './support/registry-server.js';
import { CONFORMANCE, EXPECTED, flipByte, makeProject, mismatches, runCli, sha256Of, tempDir } from './support/cli.js';

const REGISTRY = join(CONFORMANCE, 'registry');
const TINY = 'models:\n  tiny:\n    model: demo/tiny\n    version: v1\n';
const temps: string[] = [];
let server: RegistryServer;

beforeAll(async () => {
  server = await startRegistryServer({ root: REGISTRY });
});
afterAll(async () => {
  await server.close();
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

async function project(yaml: string, cache?: string) {
  const p = await makeProject(yaml);
  temps.push(p.dir);
  const env = { MODELS_CACHE_DIR: cache ?? p.cache };
  return { ...p, env, cli: (...args: string[]) => runCli(args, { cwd: p.dir, env }) };
}

/** Every file below `dir` with its content, to show that nothing changed. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out[join(entry.parentPath, entry.name).slice(dir.length + 1)] = await readFile(join(entry.parentPath, entry.name), 'utf8');
  }
  return out;
}

/** The pid of a process that really ran and is gone (what a kill -9 leaves in our file names). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

describe('A. root and path may not name the project, a dot-folder or a place outside it', () => {
  it('root: . with path: .git is refused at file:line:col before anything is downloaded; .git is untouched', async () => {
    const p = await project(`version: 1\nregistry: ${server.url}\nroot: .\nmodels:\n  tiny:\n    model: demo/tiny\n    version: v1\n    path: .git\n`);
    await mkdir(join(p.dir, '.git'));
    await writeFile(join(p.dir, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    server.reset();
    const run = await p.cli('install');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/models\.yaml:3:7: root "\.": is the project folder/);
    await server.settled();
    expect(server.requests).toEqual([]);
    expect(await tree(join(p.dir, '.git'))).toEqual({ 'HEAD': 'ref: refs/heads/main\n' });

    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nregistry: ${server.url}\nmodels:\n  tiny:\n    model: demo/tiny\n    version: v1\n    path: .git\n`);
    const path = await p.cli('install');
    expect(path.code).toBe(2);
    expect(path.stderr).toMatch(/models\.yaml:7:11: models\.tiny: path "\.git": "\.git" is a dot-folder/);
  });

  it('root: ../home (outside the project) and an absolute root with path: .config are refused; no folder is touched', async () => {
    const p = await project(`version: 1\nregistry: ${REGISTRY}\nroot: ../home\n${TINY}`);
    const outside = await p.cli('install');
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/:3:7: root "\.\.\/home": leaves the project folder/);
    expect(outside.stderr).toMatch(/hint: /);

    const home = await tempDir();
    temps.push(home);
    await mkdir(join(home, '.config'));
    await writeFile(join(home, '.config', 'settings.ini'), 'keep me');
    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nregistry: ${REGISTRY}\nroot: ${home}\nmodels:\n  cfg:\n    model: demo/tiny\n    version: v1\n    path: .config\n`);
    const dot = await p.cli('install');
    expect(dot.code).toBe(2);
    expect(dot.stderr).toMatch(/path "\.config": "\.config" is a dot-folder/);
    expect(await tree(home)).toEqual({ '.config/settings.ini': 'keep me' });
  });

  it('an absolute root must be empty or ours: a non-empty folder without our records is refused (exit 7)', async () => {
    const home = await tempDir();
    temps.push(home);
    await writeFile(join(home, 'notes.txt'), 'mine');
    const p = await project(`version: 1\nregistry: ${REGISTRY}\nroot: ${home}\n${TINY}`);
    const refused = await p.cli('install');
    expect(refused.code).toBe(7);
    expect(refused.stderr).toMatch(/refusing to install into .*: it is not empty and holds no models\.integrity\.json/);
    expect(await tree(home)).toEqual({ 'notes.txt': 'mine' });

    const empty = join(home, 'models');
    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nregistry: ${REGISTRY}\nroot: ${empty}\n${TINY}`);
    expect((await p.cli('install')).code).toBe(0);
    expect(mismatches(join(empty, 'tiny'), 'demo/tiny@v1')).toEqual([]);
    expect((await p.cli('install', '--frozen')).code).toBe(0); // ours now
  });

  it('--root may not be the project folder or one of its parents', async () => {
    const p = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`);
    for (const root of [p.dir, join(p.dir, '..')]) {
      const run = await p.cli('install', '--root', root);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/is the project folder or one of its parents/);
    }
    expect(await exists(join(p.dir, 'tiny'))).toBe(false);
  });
});

describe('B. removing an extraneous model deletes only its recorded files, never through a symlink', () => {
  it('a crafted integrity file plus models/link → elsewhere cannot delete elsewhere/important', async () => {
    const p = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`);
    expect((await p.cli('install')).code).toBe(0);
    const elsewhere = await tempDir();
    temps.push(elsewhere);
    await mkdir(join(elsewhere, 'important'));
    await writeFile(join(elsewhere, 'important', 'thesis.tex'), 'years of work');
    await symlink(elsewhere, join(p.dir, 'models', 'link'));
    const statePath = join(p.dir, 'models', 'models.integrity.json');
    const state = JSON.parse(await readFile(statePath, 'utf8'));
    state.models.gone = { ...state.models.tiny, path: 'link/important', files: [{ path: 'thesis.tex', size: 13, sha256: 'a'.repeat(64), mtimeMs: 0 }] };
    delete state.inputs;
    await writeFile(statePath, JSON.stringify(state));

    const run = await p.cli('install', '--json');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).removed).toEqual(['gone']);
    expect(await tree(elsewhere)).toEqual({ 'important/thesis.tex': 'years of work' });
    expect(JSON.parse(await readFile(statePath, 'utf8')).models.gone).toBeUndefined();
  });

  it('a removed model folder keeps the files the user added and the ones changed since', async () => {
    const p = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`);
    expect((await p.cli('install')).code).toBe(0);
    const dir = join(p.dir, 'models', 'tiny');
    await writeFile(join(dir, 'notes.md'), 'my notes');
    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nregistry: ${REGISTRY}\nmodels: {}\n`);
    const run = await p.cli('install');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/left in place: .*notes\.md/);
    expect(await tree(dir)).toEqual({ 'notes.md': 'my notes' });
  });
});

describe('C. a destination the tool did not write is refused (exit 7); --force moves it aside', () => {
  it('a folder the user made at models/tiny survives; --force renames it and says where', async () => {
    const p = await project(`version: 1\nregistry: ${server.url}\n${TINY}`);
    const dir = join(p.dir, 'models', 'tiny');
    await mkdir(join(dir, 'checkpoints'), { recursive: true });
    await writeFile(join(dir, 'checkpoints', 'epoch-40.pt'), 'forty epochs');
    server.reset();
    const refused = await p.cli('install');
    expect(refused.code).toBe(7);
    expect(refused.stderr).toMatch(/tiny: refusing to replace .*models\/tiny: it was not written by xprim-models/);
    expect(refused.stderr).toMatch(/hint: .*--force/);
    expect(await tree(dir)).toEqual({ 'checkpoints/epoch-40.pt': 'forty epochs' });
    await server.settled();
    expect(server.requests.filter((r) => r.path.startsWith('/data/') && r.path !== `/data/${EXPECTED['demo/tiny@v1']?.manifest}`)).toEqual([]); // no chunk

    const forced = await p.cli('install', '--force', '--json');
    expect(forced.code, forced.stderr).toBe(0);
    const moved = JSON.parse(forced.stdout).movedAside as { from: string; to: string }[];
    expect(moved).toHaveLength(1);
    expect(moved[0]?.to).toMatch(/models\/tiny\.xprim-replaced-\d{8}T\d{6}Z$/);
    expect(forced.stderr).toContain(`moved ${dir} aside to ${moved[0]?.to}`);
    expect(await tree(moved[0]?.to as string)).toEqual({ 'checkpoints/epoch-40.pt': 'forty epochs' });
    expect(mismatches(dir, 'demo/tiny@v1')).toEqual([]);
    // The moved-aside folder is the user's: later runs leave it alone.
    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nregistry: ${server.url}\nmodels:\n  tiny:\n    model: demo/tiny\n    version: v2\n`);
    expect((await p.cli('install')).code).toBe(0);
    expect(await tree(moved[0]?.to as string)).toEqual({ 'checkpoints/epoch-40.pt': 'forty epochs' });
  });

  it('a file the user added inside an installed model stops an update from replacing the folder', async () => {
    const p = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`);
    expect((await p.cli('install')).code).toBe(0);
    const dir = join(p.dir, 'models', 'tiny');
    await writeFile(join(dir, 'finetuned.bin'), 'mine');
    await writeFile(join(p.dir, 'models.yaml'), `version: 1\nregistry: ${REGISTRY}\nmodels:\n  tiny:\n    model: demo/tiny\n    version: v2\n`);
    const run = await p.cli('install');
    expect(run.code).toBe(7);
    expect(run.stderr).toMatch(/finetuned\.bin is not one of the files it installed/);
    expect(await readFile(join(dir, 'finetuned.bin'), 'utf8')).toBe('mine');
    expect(mismatches(dir, 'demo/tiny@v1')).toEqual([]);
  });
});

describe('D. the cache never follows symlinks', () => {
  it('cache prune with <cache>/v1/partial a symlink refuses and deletes nothing outside the cache', async () => {
    const p = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`);
    expect((await p.cli('install')).code).toBe(0);
    const victim = await tempDir();
    temps.push(victim);
    await mkdir(join(victim, 'photos'));
    await writeFile(join(victim, 'photos', 'a.jpg'), 'jpeg');
    await rm(join(p.cache, 'v1', 'partial'), { recursive: true });
    await symlink(victim, join(p.cache, 'v1', 'partial'));
    const run = await p.cli('cache', 'prune', '-y', '--older-than', '3650d');
    expect(run.code).toBe(7);
    expect(run.stderr).toMatch(/v1\/partial is a symlink: refusing to follow it/);
    expect(await tree(victim)).toEqual({ 'photos/a.jpg': 'jpeg' });
    await rm(join(p.dir, 'models', 'tiny', 'model.bin')); // something to fetch: nor does an install write through it
    const install = await p.cli('install');
    expect(install.code).toBe(7);
    expect(install.stderr).toMatch(/v1\/partial is a symlink/)
    expect(await tree(victim)).toEqual({ 'photos/a.jpg': 'jpeg' });
  });

  it('a symlink planted as a stored file is never installed: the file is fetched and verified', async () => {
    const cache = join(await tempDir(), 'cache');
    temps.push(cache);
    const one = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`, cache);
    expect((await one.cli('install')).code).toBe(0);
    const sha = EXPECTED['demo/tiny@v1']?.files['model.bin']?.sha256 as string;
    const object = join(cache, 'v1', 'files', sha.slice(0, 2), sha);
    const fake = join(one.dir, 'fake.bin');
    await writeFile(fake, Buffer.alloc(200000, 7));
    await unlink(object);
    await symlink(fake, object);
    const two = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`, cache);
    const run = await two.cli('install');
    expect(run.code, run.stderr).toBe(0);
    const installed = join(two.dir, 'models', 'tiny', 'model.bin');
    expect((await lstat(installed)).isFile()).toBe(true);
    expect(mismatches(join(two.dir, 'models', 'tiny'), 'demo/tiny@v1')).toEqual([]);
    expect((await lstat(object)).isFile()).toBe(true); // replaced by the verified file
  });
});

describe('E. no cache poisoning, and no write into one project changes another', () => {
  it('a stored file with one byte flipped (size and mtime kept) is re-hashed and fetched again for project 2', async () => {
    const cache = join(await tempDir(), 'cache');
    temps.push(cache);
    const one = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`, cache);
    expect((await one.cli('install')).code).toBe(0);
    const sha = EXPECTED['demo/tiny@v1']?.files['model.bin']?.sha256 as string;
    await flipByte(join(cache, 'v1', 'files', sha.slice(0, 2), sha), 1000);
    const two = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`, cache);
    const run = await two.cli('install');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/warning: tiny: the cached copy of model\.bin .* was changed in place/);
    expect(mismatches(join(two.dir, 'models', 'tiny'), 'demo/tiny@v1')).toEqual([]);
    expect(sha256Of(join(cache, 'v1', 'files', sha.slice(0, 2), sha))).toBe(sha);
  });

  it('an edit through project 1 (mtime kept) is caught even after project 1 is deleted, which moves the link count', async () => {
    const cache = join(await tempDir(), 'cache');
    temps.push(cache);
    const one = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`, cache);
    expect((await one.cli('install')).code).toBe(0);
    // The first project holds the hardlink; flipByte makes it writable, writes, and restores the mtime.
    await flipByte(join(one.dir, 'models', 'tiny', 'model.bin'), 100);
    await rm(join(one.dir, 'models'), { recursive: true, force: true });
    const two = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`, cache);
    const run = await two.cli('install');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/warning: tiny: the cached copy of model\.bin .* was changed in place/);
    expect(mismatches(join(two.dir, 'models', 'tiny'), 'demo/tiny@v1')).toEqual([]);
  });

  it('two projects on one cache never share an inode: writing into project 1 leaves project 2 intact', async () => {
    const cache = join(await tempDir(), 'cache');
    temps.push(cache);
    const one = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`, cache);
    const two = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`, cache);
    expect((await one.cli('install')).code).toBe(0);
    expect((await two.cli('install')).code).toBe(0);
    const file = (p: { dir: string }) => join(p.dir, 'models', 'tiny', 'model.bin');
    const [a, b] = await Promise.all([stat(file(one)), stat(file(two))]);
    expect(a.ino).not.toBe(b.ino);
    await flipByte(file(one), 5);
    expect(sha256Of(file(two))).toBe(EXPECTED['demo/tiny@v1']?.files['model.bin']?.sha256);
    expect((await two.cli('verify')).code).toBe(0);
    // Project 2's next install is up to date, and a third project gets the right bytes.
    expect((await two.cli('install', '--frozen', '--verify')).code).toBe(0);
    const three = await project(`version: 1\nregistry: ${REGISTRY}\n${TINY}`, cache);
    expect((await three.cli('install')).code).toBe(0);
    expect(mismatches(join(three.dir, 'models', 'tiny'), 'demo/tiny@v1')).toEqual([]);
  });
});

describe('F. the tool\'s own names cannot be models', () => {
  it('models.integrity.json, .xprim-tmp-store, .xprim-install.lock, *.tmp and *.xprim-old-* are refused (exit 2)', async () => {
    const cases: [string, RegExp][] = [
      ['  models.integrity.json:\n    model: demo/tiny\n    version: v1\n', /:4:3: models\.models\.integrity\.json: install path "models\.integrity\.json" is a name xprim-models reserves/],
      ['  a:\n    model: demo/tiny\n    version: v1\n    path: .xprim-tmp-store\n', /path "\.xprim-tmp-store"/],
      ['  a:\n    model: demo/tiny\n    version: v1\n    path: .xprim-install.lock\n', /path "\.xprim-install\.lock"/],
      ['  a:\n    model: demo/tiny\n    version: v1\n    path: x/y.tmp\n', /"y\.tmp" is a name xprim-models reserves/],
      ['  a:\n    model: demo/tiny\n    version: v1\n    path: tiny.xprim-old-1-abcdef12\n', /reserves for its own files/],
    ];
    for (const [models, message] of cases) {
      const p = await project(`version: 1\nregistry: ${REGISTRY}\nmodels:\n${models}`);
      const run = await p.cli('install', '--no-cache');
      expect(run.code, models).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(await exists(join(p.dir, 'models'))).toBe(false);
    }
  });
});

describe('H. corrupt install state is rebuilt by hashing; a bad alias is a registry error', () => {
  const corruptions: [string, (state: { models: Record<string, Record<string, unknown>> | unknown[] }) => void][] = [
    ['files: null', (s) => ((s.models as Record<string, Record<string, unknown>>).tiny!.files = null)],
    ['a file without sha256', (s) => delete ((s.models as Record<string, { files: Record<string, unknown>[] }>).tiny!.files[0]!.sha256)],
    ['models: []', (s) => (s.models = [])],
  ];
  for (const [what, corrupt] of corruptions) {
    it(`${what}: install rebuilds the record by hashing the files on disk, with no chunk downloaded`, async () => {
      const p = await project(`version: 1\nregistry: ${server.url}\n${TINY}`);
      expect((await p.cli('install')).code).toBe(0);
      const statePath = join(p.dir, 'models', 'models.integrity.json');
      const state = JSON.parse(await readFile(statePath, 'utf8'));
      corrupt(state);
      await writeFile(statePath, JSON.stringify(state));
      await rm(p.cache, { recursive: true }); // nothing to relink from: only the files in place can prove it
      server.reset();
      const run = await p.cli('install', '--frozen');
      expect(run.stderr).not.toMatch(/unexpected error/);
      expect(run.code, run.stderr).toBe(0);
      await server.settled();
      expect(server.requests.map((r) => r.path)).toEqual([`/data/${EXPECTED['demo/tiny@v1']?.manifest}`]);
      const rebuilt = JSON.parse(await readFile(statePath, 'utf8'));
      expect(rebuilt.models.tiny.files.map((f: { sha256: string }) => f.sha256).sort()).toEqual(Object.values(EXPECTED['demo/tiny@v1']!.files).map((f) => f.sha256).sort());
      expect((await p.cli('verify')).code).toBe(0);
    });
  }

  it('alias_of: "" in models.json is a clear registry error, not "this is a bug"', async () => {
    const registry = await tempDir();
    temps.push(registry);
    await cp(REGISTRY, registry, { recursive: true });
    const index = JSON.parse(await readFile(join(registry, 'models.json'), 'utf8'));
    index.demo.tiny.latest.alias_of = '';
    await writeFile(join(registry, 'models.json'), JSON.stringify(index));
    const p = await project(`version: 1\nregistry: ${registry}\nmodels:\n  tiny:\n    model: demo/tiny\n    version: latest\n`);
    const run = await p.cli('lock');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/invalid registry index .*"demo\/tiny@latest" alias_of is not a version name/);
    expect(run.stderr).not.toMatch(/this is a bug/);
  });
});

describe('I. leftovers of a killed run are cleaned up by the next one', () => {
  it('temp files and *.xprim-old-* / *.xprim-staging-* folders of a dead process go; a swapped-out model is put back', async () => {
    const p = await project(`version: 1\nregistry: ${REGISTRY}\nmodels:\n  tiny:\n    model: demo/tiny\n    version: v1\n  edge:\n    model: demo/edge\n    version: v1\n`);
    expect((await p.cli('install')).code).toBe(0);
    const root = join(p.dir, 'models');
    const pid = deadPid();
    // What kill -9 leaves: a state write's temp file, staging and old folders, and (killed between
    // the two renames of a promote) a model folder that exists only as its old copy.
    const temp = join(root, `.models.integrity.json.${pid}.0123456789ab.tmp`);
    await writeFile(temp, '{"half":');
    await cp(join(root, 'tiny'), join(root, `tiny.xprim-staging-${pid}-0badc0de`), { recursive: true });
    await cp(join(root, 'tiny'), join(root, `tiny.xprim-old-${pid}-deadbeef`), { recursive: true });
    await cp(join(root, 'edge'), join(root, `edge.xprim-old-${pid}-feedf00d`), { recursive: true });
    await rm(join(root, 'edge'), { recursive: true });
    const manifestTemp = join(p.cache, 'v1', 'manifests', `.${'0'.repeat(64)}.${pid}.ba5eba11ba5e.tmp`);
    await writeFile(manifestTemp, 'partial');
    // Not ours to clean: a live process's staging folder and a user's look-alike.
    await mkdir(join(root, `tiny.xprim-staging-${process.pid}-00000000`));
    await writeFile(join(root, 'tiny.notes.tmp'), 'user file');

    const run = await p.cli('install', '--frozen');
    expect(run.code, run.stderr).toBe(0);
    expect((await readdir(root)).sort()).toEqual(['edge', 'models.integrity.json', 'tiny', `tiny.xprim-staging-${process.pid}-00000000`, 'tiny.notes.tmp'].sort());
    expect(await exists(manifestTemp)).toBe(false);
    expect(mismatches(join(root, 'tiny'), 'demo/tiny@v1')).toEqual([]);
    expect(mismatches(join(root, 'edge'), 'demo/edge@v1')).toEqual([]);
    expect((await p.cli('verify')).code).toBe(0);
  });
});
