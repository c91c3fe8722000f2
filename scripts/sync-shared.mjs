#!/usr/bin/env node
// Refresh the repository's copies of ../shared (docs/SPEC.md, test/fixtures/conformance) from the
// shared folder beside the repo; test/fixtures.test.ts fails until they match.
import { chmodSync, cpSync, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const shared = join(repo, '..', 'shared');
if (!existsSync(shared)) {
  console.error(`no shared folder at ${shared}: nothing to sync`);
  process.exit(2);
}
const target = join(repo, 'test', 'fixtures', 'conformance');
rmSync(target, { recursive: true, force: true });
cpSync(join(shared, 'conformance'), target, { recursive: true });
cpSync(join(shared, 'SPEC.md'), join(repo, 'docs', 'SPEC.md'));
// The shared folder is read-only; the copies must stay writable for git and for the next sync.
const makeWritable = (path) => {
  chmodSync(path, statSync(path).mode | 0o200);
  if (statSync(path).isDirectory()) for (const name of readdirSync(path)) makeWritable(join(path, name));
};
makeWritable(target);
makeWritable(join(repo, 'docs', 'SPEC.md'));
console.log(`synced ${target} and docs/SPEC.md from ${shared}`);
