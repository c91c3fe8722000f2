/**
 * The store's own rules, on real files: `auto` never lets two installs share an inode, a stored
 * file is trusted only by its recorded identity or its hash, and no store folder follows a symlink.
 */
import { lstat, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/util/hash.js';
import { Store, linkFile } from '../src/store/store.js';
import { flipByte, tempDir } from './support/cli.js';

const temps: string[] = [];
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

async function storeWith(content: string): Promise<{ dir: string; store: Store; sha: string; object: string }> {
  const dir = await tempDir();
  temps.push(dir);
  const store = new Store(join(dir, 'cache'));
  await store.init();
  const sha = sha256(Buffer.from(content));
  await writeFile(join(dir, 'incoming'), content);
  const object = await store.putObject(join(dir, 'incoming'), sha);
  return { dir, store, sha, object };
}

describe('linkFile auto', () => {
  it('hardlinks a stored file only while no other install links it, else copies', async () => {
    const { dir, object } = await storeWith('weights');
    expect(await linkFile(object, join(dir, 'one'), 'auto')).toBe('hardlink');
    expect(await linkFile(object, join(dir, 'two'), 'auto')).toMatch(/^(reflink|copy)$/);
    const [o, one, two] = await Promise.all([stat(object), stat(join(dir, 'one')), stat(join(dir, 'two'))]);
    expect(one.ino).toBe(o.ino);
    expect(two.ino).not.toBe(o.ino);
    // Re-staging the project that holds the only other link (an update or a repair) may hardlink again.
    expect(await linkFile(object, join(dir, 'one-again'), 'auto', join(dir, 'one'))).toBe('hardlink');
    expect(await readFile(join(dir, 'two'), 'utf8')).toBe('weights');
  });
});

describe('Store.trustObject', () => {
  it('trusts a recorded identity without hashing, and drops a file changed in place', async () => {
    const { store, sha, object } = await storeWith('x'.repeat(4096));
    const id = store.identity(sha);
    expect(await store.trustObject(sha, 4096, id)).toBe('ok');
    expect(await store.trustObject(sha, 4096, undefined)).toBe('ok'); // no record: re-hashed, fine
    await flipByte(object, 100); // size and mtime kept: only the ctime (or a hash) can tell
    expect(await store.trustObject(sha, 4096, id)).toBe('corrupt');
    await expect(lstat(object)).rejects.toThrow();
  });

  it('treats a symlink in place of a stored file as absent', async () => {
    const { dir, store, sha, object } = await storeWith('abc');
    await rm(object);
    await writeFile(join(dir, 'other'), 'abc');
    await symlink(join(dir, 'other'), object);
    expect(await store.hasObject(sha, 3)).toBe(false);
    expect(await store.trustObject(sha, 3, undefined)).toBe('absent');
  });
});

describe('store folders never follow symlinks', () => {
  it('a symlinked partial download folder is replaced, and what it pointed at is untouched', async () => {
    const { dir, store } = await storeWith('abc');
    const victim = join(dir, 'victim');
    await mkdir(victim);
    await writeFile(join(victim, 'keep.txt'), 'keep');
    const manifest = 'a'.repeat(64);
    await symlink(victim, store.partialDir(manifest));
    const made = await store.preparePartialDir(manifest);
    expect((await lstat(made)).isDirectory()).toBe(true);
    expect(await readFile(join(victim, 'keep.txt'), 'utf8')).toBe('keep');
  });

  it('init refuses a store subfolder that is a symlink', async () => {
    const { dir, store } = await storeWith('abc');
    await rm(join(store.dir, 'files'), { recursive: true });
    await symlink(dir, join(store.dir, 'files'));
    await expect(store.init()).rejects.toThrow(/files is a symlink: refusing to follow it/);
  });
});

describe('file hasher', () => {
  it('hashes through an open descriptor, and keeps a failed read of an abandoned file for digest (no unhandled rejection)', async () => {
    const { open } = await import('node:fs/promises');
    const { createFileHasher } = await import('../src/store/file-hasher.js');
    const dir = await tempDir();
    temps.push(dir);
    const path = join(dir, 'partial');
    const content = Buffer.from('hello, hasher');
    await writeFile(path, content);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      for (const hasher of [createFileHasher(0), createFileHasher(64 * 1024 * 1024)]) {
        const handle = await open(path, 'r');
        const id = hasher.open(handle.fd);
        hasher.feed(id, 0, 5);
        hasher.feed(id, 5, content.length - 5);
        expect(await hasher.digest(id)).toBe(sha256(content));
        await handle.close();
        // An interrupted install closes a partial while a read of it is still queued, and never asks for its digest.
        const closed = await open(path, 'r');
        const abandoned = hasher.open(closed.fd);
        await closed.close();
        hasher.feed(abandoned, 0, content.length);
        await new Promise((resolve) => setTimeout(resolve, 50));
        await hasher.close();
      }
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
