// Bundle the GitHub Action (entry src/action/index.ts, which runs src/action/main.ts) into dist/index.js, which action.yml runs and which
// is committed: a runner executes it straight from the checkout, without npm install.
// CI rebuilds it and fails on any difference (check-dist), so the output must be deterministic.
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist');

await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/action/index.ts'],
  outfile: 'dist/index.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  // action.yml says node24; the code must still run on Node 20 runners and machines.
  target: 'node20',
  minify: false,
  sourcemap: false,
  // Some dependencies (the Azure SDK under @actions/cache) are CommonJS and `require` Node built-ins.
  banner: { js: "import { createRequire as __xprimCreateRequire } from 'node:module';\nconst require = __xprimCreateRequire(import.meta.url);" },
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});

// Third-party licences of everything bundled, one file, for redistribution of dist/.
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const at = input.lastIndexOf('node_modules/');
  if (at < 0) continue;
  const name = /^(?:@[^/]+\/)?[^/]+/.exec(input.slice(at + 'node_modules/'.length))[0];
  packages.set(join(root, input.slice(0, at + 'node_modules/'.length + name.length)), name);
}
const sections = [];
for (const [dir, name] of [...packages].sort((a, b) => (a[1] === b[1] ? (a[0] < b[0] ? -1 : 1) : a[1] < b[1] ? -1 : 1))) {
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
  const licenseFile = (await readdir(dir)).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  const text = licenseFile ? (await readFile(join(dir, licenseFile), 'utf8')).trim() : `License: ${pkg.license ?? 'unknown'}`;
  sections.push(`${name}@${pkg.version}\n${typeof pkg.license === 'string' ? pkg.license : ''}\n\n${text}\n`);
}
await writeFile(join(outdir, 'licenses.txt'), sections.join('\n-----\n\n'));
console.log(`dist/index.js: ${packages.size} packages bundled`);
