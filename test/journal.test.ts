/**
 * The resume journal (src/fetch/fetch.ts Journal) is read after a crash, so it must survive what a crash
 * leaves: a torn last line, zeros, garbage. It is fuzzed here on real files, and a real install is run
 * over a journal torn the way a power loss tears it.
 */
import { readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Journal } from '../src/fetch/fetch.js';
import { publish } from '../src/ops/publish.js';
import { Store } from '../src/store/store.js';
import { cleanTemps, cliEnv, randomish, runCli, sha256, tempDir, writeProject, writeTree } from './support/robustness.js';

afterAll(cleanTemps);

type Rec = { kind: 'done' | 'undo'; index: number } | { kind: 'prog'; index: number; bytes: number; validator: string };

const record: fc.Arbitrary<Rec> = fc.oneof(
  fc.record({ kind: fc.constantFrom('done' as const, 'undo' as const), index: fc.nat(40) }),
  fc.record({ kind: fc.constant('prog' as const), index: fc.nat(40), bytes: fc.nat(1 << 30), validator: fc.string({ minLength: 1, maxLength: 30 }) }),
);

/** Lines that no writer produces: binary junk, zeros from a lost page, cut and mangled records. */
const garbage: fc.Arbitrary<string> = fc
  .oneof(
    fc.string({ maxLength: 40 }),
    fc.constantFrom('\u0000'.repeat(64), 'prog\t3\t1048576\t"abc', 'prog\t1\t10\t"x', 'prog\t1\t-5\t"x"', 'prog\t1\t5\t7', 'done\t1.5', 'done\t-1', 'done\t1\textra', 'done\t99999999999999999999', '{}', 'done'),
  )
  .map((s) => s.replace(/\n/g, ' '))
  .filter((s) => !/^(done|undo|prog)\t\d+(\t\d+\t"([^"\\]|\\.)*")?$/.test(s));

function line(r: Rec): string {
  return r.kind === 'prog' ? `prog\t${r.index}\t${r.bytes}\t${JSON.stringify(r.validator)}` : `${r.kind}\t${r.index}`;
}

/** What a journal of these intact records means. */
function replay(records: Rec[]): { done: number[]; progress: [number, { bytes: number; validator: string }][] } {
  const done = new Set<number>();
  const progress = new Map<number, { bytes: number; validator: string }>();
  for (const r of records) {
    if (r.kind === 'done') {
      done.add(r.index);
      progress.delete(r.index);
    } else if (r.kind === 'undo') {
      done.delete(r.index);
      progress.delete(r.index);
    } else if (r.kind === 'prog') progress.set(r.index, { bytes: r.bytes, validator: r.validator });
  }
  return { done: [...done].sort((a, b) => a - b), progress: [...progress].sort((a, b) => a[0] - b[0]) };
}

function stateOf(journal: Journal) {
  return { done: [...journal.done].sort((a, b) => a - b), progress: [...journal.progress].sort((a, b) => a[0] - b[0]) };
}

const openDescriptors = () => readdirSync('/proc/self/fd').length;

describe('Journal.open on what a crash leaves', () => {
  it('keeps every intact record, skips garbage lines and a torn tail, and leaks no descriptor (fuzzed)', async () => {
    const dir = await tempDir('xprim-journal-');
    const before = openDescriptors();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof({ weight: 3, arbitrary: record }, { weight: 1, arbitrary: garbage }), { maxLength: 30 }), fc.nat(), async (items, cut) => {
        const lines = items.map((item) => (typeof item === 'string' ? item : line(item)));
        const text = lines.map((l) => `${l}\n`).join('');
        const at = text.length === 0 ? 0 : cut % (text.length + 1);
        const torn = text.slice(0, at);
        // Intact: the records whose line (newline included) is entirely before the cut.
        const intact: Rec[] = [];
        let end = 0;
        items.forEach((item, i) => {
          end += (lines[i] as string).length + 1;
          if (end <= at && typeof item !== 'string') intact.push(item);
        });
        await writeFile(join(dir, 'journal'), torn);
        const journal = await Journal.open(dir);
        try {
          expect(stateOf(journal)).toEqual(replay(intact));
          expect(journal.resumed).toBe(torn.length > 0);
          // What is appended after a torn tail is read back: it is not glued onto the torn line.
          await journal.markDone(41);
        } finally {
          await journal.close();
        }
        const again = await Journal.open(dir);
        await again.close();
        expect(again.done.has(41)).toBe(true);
      }),
      { numRuns: 300 },
    );
    expect(openDescriptors()).toBe(before);
  });

  it('reads back exactly what it wrote', async () => {
    const dir = await tempDir('xprim-journal-');
    const journal = await Journal.open(dir);
    await journal.markProgress(3, 1048576, '"etag-\\"quoted\\""');
    await journal.markDone(1);
    await journal.markDone(2);
    await journal.forget(2);
    await journal.markProgress(5, 10, 'Tue, 01 Dec 2026 10:00:00 GMT');
    await journal.close();
    const reread = await Journal.open(dir);
    await reread.close();
    expect(stateOf(reread)).toEqual({
      done: [1],
      progress: [
        [3, { bytes: 1048576, validator: '"etag-\\"quoted\\""' }],
        [5, { bytes: 10, validator: 'Tue, 01 Dec 2026 10:00:00 GMT' }],
      ],
    });
  });
});

describe('an install over a torn journal', () => {
  it('resumes (exit 0, exact bytes) instead of failing on the torn line', async () => {
    const base = await tempDir('xprim-journal-e2e-');
    const registry = join(base, 'registry');
    const data = randomish(3 * 1024 * 1024, 5);
    await writeTree(join(base, 'src'), { 'w.bin': data });
    await mkdir(registry, { recursive: true });
    const { manifestHash } = await publish({ sourceDir: join(base, 'src'), registryDir: registry, model: 'test/w', version: 'v1', chunkSize: 1024 * 1024 });
    const dir = join(base, 'project');
    await writeProject(dir, registry, { w: { model: 'test/w', version: 'v1' } });
    const cache = join(dir, 'cache');
    const partial = new Store(cache).partialDir(manifestHash);
    await mkdir(partial, { recursive: true });
    // A power loss in the middle of a progress record, after a garbage line.
    await writeFile(join(partial, 'journal'), 'done\t0\n\u0000\u0000\u0000garbage\nprog\t1\t1048576\t"abc');
    const result = await runCli(['install'], dir, cliEnv(cache));
    expect(result.code, result.stderr).toBe(0);
    expect(sha256(await readFile(join(dir, 'models', 'w', 'w.bin')))).toBe(sha256(data));
  });
});
