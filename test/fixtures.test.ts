/**
 * The repository carries its own copies of the shared contract (docs/SPEC.md) and of the conformance
 * registry (test/fixtures/conformance), so a clone without `../shared` (GitHub's CI) tests everything.
 * Where `../shared` is beside the repo, the copies must be byte-identical to it: a change upstream is
 * noticed here, and `npm run sync-shared` refreshes them.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, SHARED } from './support/cli.js';

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

async function differences(copy: string, upstream: string): Promise<string[]> {
  const [mine, theirs] = [await listFiles(copy), await listFiles(upstream)];
  const problems = [...theirs.filter((f) => !mine.includes(f)).map((f) => `missing ${f}`), ...mine.filter((f) => !theirs.includes(f)).map((f) => `extra ${f}`)];
  for (const file of theirs.filter((f) => mine.includes(f))) {
    const [a, b] = await Promise.all([readFile(join(copy, file)), readFile(join(upstream, file))]);
    if (!a.equals(b)) problems.push(`differs ${file}`);
  }
  return problems;
}

describe('in-repo copies of ../shared', () => {
  it('the conformance copy has the registry, the expected hashes and the hostile cases', async () => {
    const files = await listFiles(join(REPO, 'test', 'fixtures', 'conformance'));
    expect(files).toContain('expected.json');
    expect(files).toContain('hostile/cases.json');
    expect(files.filter((f) => f.startsWith('registry/data/')).length).toBeGreaterThan(10);
  });

  it.skipIf(!existsSync(join(SHARED, 'conformance')))('test/fixtures/conformance is identical to ../shared/conformance', async () => {
    expect(await differences(join(REPO, 'test', 'fixtures', 'conformance'), join(SHARED, 'conformance'))).toEqual([]);
  });

  it.skipIf(!existsSync(join(SHARED, 'SPEC.md')))('docs/SPEC.md is identical to ../shared/SPEC.md', async () => {
    const [copy, upstream] = await Promise.all([readFile(join(REPO, 'docs', 'SPEC.md')), readFile(join(SHARED, 'SPEC.md'))]);
    expect(copy.equals(upstream)).toBe(true);
  });
});
