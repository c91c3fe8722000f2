#!/usr/bin/env node
// Builds demo/registry/ (an XPRIM registry folder) from demo/sources/<name>/ with this repo's own
// `models publish`: model demo/<name>, version = the upstream npm package's version, alias latest.
//
//   npm run build && node scripts/build-demo-registry.mjs
//
// The registry is built in a staging folder and swapped in only when every publish succeeded, so a
// failed run leaves the previous demo/registry/ as it was, and a re-run never trips over versions
// that an earlier run already published.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { DEMO_SOURCES, PACKAGES, ROOT, SOURCES_DIR, inspectSource } from './fetch-demo-sources.mjs';

const REGISTRY_DIR = join(ROOT, 'demo', 'registry');
const CLI = join(ROOT, 'bin', 'models.js');
const CLI_ENTRY = join(ROOT, 'lib', 'src', 'cli', 'main.js');

const log = (msg) => process.stdout.write(`${msg}\n`);
const rel = (p) => relative(ROOT, p).split('\\').join('/');

class BuildError extends Error {}

/** The `models publish` arguments for one demo source, relative to the repo root. */
function publishArgs(src, toDir) {
  const pkg = PACKAGES[src.pkg];
  return [
    rel(CLI),
    'publish',
    `demo/sources/${src.name}`,
    '--to',
    rel(toDir),
    '--model',
    `demo/${src.name}`,
    '--version',
    pkg.version,
    '--alias',
    'latest',
    '--chunk-size',
    '1MiB',
    '--metadata',
    `license=${src.license}`,
    '--metadata',
    `source=npm:${src.pkg}@${pkg.version}`,
  ];
}

async function checkInputs() {
  if (!existsSync(CLI_ENTRY)) {
    throw new BuildError(`${rel(CLI_ENTRY)} is missing: run \`npm run build\` first (bin/models.js loads the compiled CLI)`);
  }
  const known = new Map(DEMO_SOURCES.map((s) => [s.name, s]));
  const folders = existsSync(SOURCES_DIR)
    ? (await readdir(SOURCES_DIR, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort()
    : [];
  for (const name of folders) {
    if (!known.has(name)) {
      throw new BuildError(`demo/sources/${name} is not a pinned demo source: add it to DEMO_SOURCES in scripts/fetch-demo-sources.mjs or remove the folder`);
    }
  }
  for (const src of DEMO_SOURCES) {
    const problems = await inspectSource(src);
    if (problems.length > 0) {
      const list = problems.map((p) => `${p.file} ${p.problem}`).join(', ');
      throw new BuildError(`demo/sources/${src.name}: ${list}: run \`node scripts/fetch-demo-sources.mjs\` first`);
    }
  }
  return folders.map((name) => known.get(name));
}

async function folderSize(dir) {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    total += entry.isDirectory() ? await folderSize(p) : (await stat(p)).size;
  }
  return total;
}

async function main(argv) {
  if (argv.length > 0) {
    process.stderr.write(`build-demo-registry: unexpected argument ${argv[0]}\nusage: node scripts/build-demo-registry.mjs\n`);
    return 2;
  }
  const sources = await checkInputs();
  const staging = join(ROOT, 'demo', `.registry-staging-${process.pid}`);
  const old = join(ROOT, 'demo', `.registry-old-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    for (const src of sources) {
      const args = publishArgs(src, staging);
      log(`$ node ${args.join(' ')}`);
      const res = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
      if (res.error) throw new BuildError(`cannot run node ${rel(CLI)}: ${res.error.message}`);
      if (res.status !== 0) throw new BuildError(`models publish demo/sources/${src.name} exited with ${res.status ?? res.signal}; demo/registry left unchanged`);
    }
    if (!existsSync(join(staging, 'models.json'))) {
      throw new BuildError(`models publish wrote no models.json in ${rel(staging)}; demo/registry left unchanged`);
    }
    const hadOld = existsSync(REGISTRY_DIR);
    if (hadOld) await rename(REGISTRY_DIR, old);
    try {
      await rename(staging, REGISTRY_DIR);
    } catch (err) {
      if (hadOld) await rename(old, REGISTRY_DIR);
      throw err;
    }
    await rm(old, { recursive: true, force: true });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }

  const index = JSON.parse(await readFile(join(REGISTRY_DIR, 'models.json'), 'utf8'));
  for (const [group, models] of Object.entries(index)) {
    for (const [model, versions] of Object.entries(models)) {
      for (const [version, entry] of Object.entries(versions)) {
        const alias = entry.alias_of ? ` -> ${entry.alias_of}` : '';
        log(`${group}/${model}@${version}${alias}  ${entry.hash}`);
      }
    }
  }
  log(`demo/registry: ${await folderSize(REGISTRY_DIR)} bytes`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`build-demo-registry: ${err instanceof BuildError ? err.message : err.stack}\n`);
    process.exitCode = 1;
  },
);
