#!/usr/bin/env node
// Installer packaging example: stage this repo's demo models (models.yaml + models.lock at the repo
// root) for several target platforms, then run the runtime readiness check on each staging folder
// the way the packaged app would at start-up.
//
//   node examples/installer/package.mjs [--out DIR] [--platforms linux-x64,win32-x64] [--clean]
//
// For each platform it runs
//   models install --frozen --root <out>/<platform>/models --platform <platform>
// which writes the models and, in that root, the integrity file models.integrity.json (lock entries,
// file sizes and sha256). Ship the whole <out>/<platform>/models folder inside the installer; the app
// calls checkModels('<resources>/models') from 'xprim-models/runtime' at start-up.
//
// Plain Node ESM, no dependencies beyond xprim-models itself (run `npm run build` first).
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
// The package imports itself by name (Node's package self-reference through "exports"); an app
// that depends on xprim-models writes exactly the same line.
import { checkModels } from 'xprim-models/runtime';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MODELS_BIN = join(REPO, 'bin', 'models.js'); // in an app: `npx models`, or node_modules/.bin/models

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: join(REPO, 'dist', 'installer') },
    platforms: { type: 'string', default: 'linux-x64,win32-x64' },
    config: { type: 'string', default: join(REPO, 'models.yaml') },
    clean: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: node examples/installer/package.mjs [--out DIR] [--platforms linux-x64,win32-x64] [--config models.yaml] [--clean]\n');
  process.exit(0);
}

const out = resolve(values.out);
const platforms = values.platforms.split(',').map((p) => p.trim()).filter(Boolean);

/** Run the models CLI; resolve with its exit code and the JSON document it printed. */
function models(args) {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [MODELS_BIN, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (text) => (stdout += text));
    child.on('error', fail);
    child.on('close', (code) => {
      let document;
      try {
        document = JSON.parse(stdout);
      } catch {
        document = undefined;
      }
      done({ code: code ?? 1, document });
    });
  });
}

let failed = false;
for (const platform of platforms) {
  const staging = join(out, platform);
  const root = join(staging, 'models');
  if (values.clean) await rm(staging, { recursive: true, force: true });

  process.stdout.write(`\n== ${platform}: staging ${root}\n`);
  const { code, document } = await models(['install', '--frozen', '--config', values.config, '--root', root, '--platform', platform, '--json']);
  if (code !== 0) {
    // The CLI already printed the error and its hint on stderr; keep its exit code (8: stale lock, 5: network, …).
    process.stderr.write(`package: install for ${platform} failed (exit ${code})\n`);
    process.exit(code);
  }
  const installed = document.installed.map((m) => `${m.name} (${m.source})`);
  const skipped = document.skipped.map((m) => m.name);
  process.stdout.write(`installed: ${installed.join(', ') || '-'}; up to date: ${skipped.join(', ') || '-'}\n`);

  // What the packaged app does at start-up; full mode re-hashes every file (fast mode: size only).
  const report = await checkModels(root, { mode: 'full' });
  process.stdout.write(`${report.toText()}\n`);
  if (!report.ready) failed = true;
}

if (failed) {
  process.stderr.write('package: a staged model is not ready (see the report above)\n');
  process.exit(6);
}
process.stdout.write(`\nstaged ${platforms.length} platform(s) under ${out}\n`);
