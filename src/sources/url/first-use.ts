/**
 * Pin a `url:` entry: the object is downloaded once into the store (unless the store has the
 * sha256 models.yaml gives), hashed, checked against that sha256 when given, and, for an archive,
 * listed: every file it installs, with size and sha256, so `verify` needs nothing but the lock.
 */
import { join } from 'node:path';
import { lstat, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { ModelEntry, UrlSpec } from '../../project/config.js';
import type { LockedFile } from '../../project/lockfile.js';
import { ModelsError } from '../../util/errors.js';
import { sha256 as sha256Hex } from '../../util/hash.js';
import { downloadToFile } from '../../fetch/download.js';
import { listArchive } from '../../archive/extract.js';
import type { SourceContext } from '../adapter.js';
import { objectPath, urlClient } from './client.js';

/** A url: object may be big (model weights), but not absurd: 1 TiB. */
const MAX_OBJECT_BYTES = 2 ** 40;

export interface PinnedObject {
  sha256: string;
  size: number;
  validator?: string;
  /** True when this run downloaded it to learn its hash (trust on first use). */
  firstUse: boolean;
}

export async function pinObject(ctx: SourceContext, entry: ModelEntry, spec: UrlSpec): Promise<PinnedObject> {
  const { store } = ctx.session;
  await store.init();
  if (spec.sha256) {
    const known = await storedSize(ctx, spec.sha256);
    if (known !== undefined) return { sha256: spec.sha256, size: known, firstUse: false };
  }
  // A folder of its own per download (partial folders are named by a hash).
  const dir = await store.preparePartialDir(sha256Hex(`${spec.url}\n${randomBytes(8).toString('hex')}`));
  const temp = join(dir, 'object');
  try {
    const got = await downloadToFile(urlClient(ctx.session, spec.url, undefined), objectPath(undefined), temp, `${entry.name}: ${spec.url}`, { signal: ctx.signal, maxBytes: MAX_OBJECT_BYTES });
    if (spec.sha256 && got.sha256 !== spec.sha256) {
      throw new ModelsError('E_INTEGRITY', `${entry.name}: ${spec.url} serves sha256 ${got.sha256}, models.yaml says ${spec.sha256}`, {
        hint: 'the file changed upstream or the sha256 in models.yaml is wrong: check with its publisher before changing sha256:',
      });
    }
    await store.putObject(temp, got.sha256);
    return { ...got, firstUse: !spec.sha256 };
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function storedSize(ctx: SourceContext, sha256: string): Promise<number | undefined> {
  const info = await lstat(ctx.session.store.objectPath(sha256)).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  // Trusted only after a re-hash: this becomes the lock's pin.
  return (await ctx.session.store.trustObject(sha256, info.size, undefined)) === 'ok' ? info.size : undefined;
}

/** The files a url: entry installs: the object itself, or what its archive holds. */
export async function filesOf(ctx: SourceContext, spec: UrlSpec, object: PinnedObject): Promise<LockedFile[]> {
  if (!spec.extract) return [{ path: spec.file, size: object.size, sha256: object.sha256 }];
  const listed = await listArchive({ archivePath: ctx.session.store.objectPath(object.sha256), name: spec.file, format: spec.extract, strip: spec.strip, ...(ctx.signal ? { signal: ctx.signal } : {}) });
  return listed.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 }));
}
