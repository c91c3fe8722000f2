/**
 * The cross-process lock as a mechanism: held for longer than its refresh interval, it stays
 * fresh (nobody can take it as stale) and is released whole. Short timings keep the test quick; the
 * real ones are 5 s / 15 s.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireLock } from '../src/store/locks.js';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
const timing = { refreshMs: 200, staleMs: 1_000 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('acquireLock', () => {
  it('keeps a lock held past several refreshes (owner file and all), refuses a second taker, and releases it whole', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xprim-locks-'));
    dirs.push(dir);
    const path = join(dir, 'thing');
    const release = await acquireLock(path, 'the thing', 1_000, timing);
    expect(await readFile(join(`${path}.lock`, 'owner'), 'utf8')).toContain(String(process.pid));
    // Well past `stale` (proper-lockfile may round mtimes to whole seconds): only refreshing keeps it ours.
    await sleep(2_600);
    await expect(acquireLock(path, 'the thing', 300, timing)).rejects.toMatchObject({ code: 'E_LOCK_TIMEOUT' });
    await release();
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('assertHeld passes while the lock is ours and throws E_LOCK_TIMEOUT once another process has taken it over', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xprim-locks-'));
    dirs.push(dir);
    const path = join(dir, 'index');
    const release = await acquireLock(path, 'the index', 1_000, timing);
    await sleep(1_500); // past a refresh: a lock still ours stays ours
    expect(() => release.assertHeld()).not.toThrow();
    // What a takeover looks like from here: the lock folder is replaced by someone else's.
    await rm(`${path}.lock`, { recursive: true, force: true });
    await mkdir(`${path}.lock`);
    // proper-lockfile refreshes at least once a second; the next refresh finds the lock gone.
    await sleep(2_500);
    expect(() => release.assertHeld()).toThrow(expect.objectContaining({ code: 'E_LOCK_TIMEOUT', message: expect.stringMatching(/^lost the lock on the index/) }));
    await release();
    // Releasing a lost lock leaves the new holder's lock alone.
    expect(existsSync(`${path}.lock`)).toBe(true);
  });
});
