// Bundle the CLI (entry src/cli/index.ts) and its dependencies into lib/cli-bundle/, run by bin/models.js.
// Why: loading ~130 of our modules and ~120 of our dependencies' files (yaml alone is 84) was most of a
// no-op `models install --frozen` (issue #16: <= 2x `node -e 0`); one bundle halves its CPU time.
// Code behind a dynamic import (each command, undici, listr2, the archive readers) is split into
// chunks loaded only when used. The chunks sit beside index.js, so src/util/version.ts finds
// package.json two levels up, as from lib/util/. The programmatic API (lib/index.js) is not bundled.
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'lib', 'cli-bundle');

await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { index: 'src/cli/index.ts' },
  outdir,
  bundle: true,
  splitting: true,
  chunkNames: '[name]-[hash]',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // CommonJS dependencies `require` Node built-ins.
  banner: { js: "import { createRequire as __xprimCreateRequire } from 'node:module';\nconst require = __xprimCreateRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
