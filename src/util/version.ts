import { readFileSync } from 'node:fs';

/** The package version, read once from package.json (two levels up from lib/util/ and src/util/, one from the Action bundle in dist/). */
export const VERSION: string = (() => {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'xprim-models') return pkg.version;
    } catch {
      // try the next layout
    }
  }
  return '0.0.0';
})();

export const GENERATOR = `xprim-models ${VERSION}`;
