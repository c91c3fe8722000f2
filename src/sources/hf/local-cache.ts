/**
 * Reuse of a local Hugging Face cache (HF_HUB_CACHE), as `hf download` lays it out:
 *   <cache>/<type>s--<org>--<name>/blobs/<etag>            (an LFS blob is named by its sha256, a git file by its blob SHA-1)
 *   <cache>/<type>s--<org>--<name>/snapshots/<commit>/<path> (a symlink into blobs/)
 * A file found there is hashed before it is used (a wrong one is passed over, and the Hub asked),
 * and nothing is ever written there: bytes are copied into our own store.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { LockedFile } from '../../project/lockfile.js';
import { LocalFileTableSource, type OpenedBody, type RegistrySource } from '../../registry/source.js';
import { ModelsError } from '../../util/errors.js';
import { sha256File } from '../../util/hash.js';
import { debugLog } from '../../util/log.js';
import { type RepoRef, cacheFolder, repoLabel } from './repo.js';
import type { HubSettings } from './settings.js';

export const gitBlobSha1 = (bytes: Uint8Array): string => createHash('sha1').update(`blob ${bytes.byteLength}\0`).update(bytes).digest('hex');

/** A file's place in a snapshot folder: its repo path, segment by segment, never outside the folder. */
function snapshotPath(folder: string, commit: string, path: string): string {
  return join(folder, 'snapshots', commit, ...path.split('/'));
}

/** Git files are small: the cache's copy of one, when its bytes are the blob `oid` names. */
export async function cachedGitFile(settings: HubSettings, ref: RepoRef, commit: string, file: { path: string; size: number; oid: string }): Promise<Buffer | undefined> {
  const folder = cacheFolder(settings, ref);
  for (const candidate of [join(folder, 'blobs', file.oid), snapshotPath(folder, commit, file.path)]) {
    const info = await stat(candidate).catch(() => undefined);
    if (!info?.isFile() || info.size !== file.size) continue;
    const bytes = await readFile(candidate).catch(() => undefined);
    if (bytes && gitBlobSha1(bytes) === file.oid) {
      debugLog(`HF_HUB_CACHE: ${repoLabel(ref)}: ${file.path} reused from ${candidate}`);
      return bytes;
    }
  }
  return undefined;
}

/**
 * The local cache as a source of `data/<sha256>`: the LFS blob named by the sha256, or the file in
 * this commit's snapshot. Each candidate is hashed once before it is served.
 */
export async function hubCacheSource(settings: HubSettings, ref: RepoRef, commit: string, files: LockedFile[]): Promise<RegistrySource | undefined> {
  const folder = cacheFolder(settings, ref);
  // stat, not lstat: a cache folder the user moved elsewhere and linked back is still the cache.
  if (!(await stat(folder).then((i) => i.isDirectory(), () => false))) return undefined;
  const table = new Map<string, string[]>();
  const sizes = new Map<string, number>();
  for (const f of files) {
    if (!f.sha256 || f.size === 0) continue;
    const key = `data/${f.sha256}`;
    const paths = table.get(key) ?? [join(folder, 'blobs', f.sha256)];
    paths.push(snapshotPath(folder, commit, f.path));
    table.set(key, paths);
    sizes.set(key, f.size);
  }
  const verdicts = new Map<string, Promise<boolean>>();
  const accept = (path: string, relPath: string): Promise<boolean> => {
    const key = `${relPath}\0${path}`;
    let verdict = verdicts.get(key);
    if (!verdict) {
      verdict = (async () => {
        const info = await stat(path);
        if (info.size !== sizes.get(relPath)) return false;
        const ok = (await sha256File(path)) === relPath.slice('data/'.length);
        debugLog(`HF_HUB_CACHE: ${path} ${ok ? 'matches' : 'does not match'} ${relPath.slice(5, 17)}${ok ? ', reused' : ', passed over'}`);
        return ok;
      })();
      verdicts.set(key, verdict);
    }
    return verdict;
  };
  return new LocalFileTableSource(`${folder} (HF_HUB_CACHE)`, table, accept);
}

/**
 * Under --offline, the last source: what the store and the local cache did not have cannot be
 * fetched; say so (exit 5) rather than "not found".
 */
export function offlineStop(ref: RepoRef, files: LockedFile[]): RegistrySource {
  const byKey = new Map(files.filter((f) => f.sha256).map((f) => [`data/${f.sha256 as string}`, f.path]));
  return {
    location: '--offline',
    remote: false,
    open(relPath: string): Promise<OpenedBody | undefined> {
      const path = byKey.get(relPath) ?? relPath;
      return Promise.reject(new ModelsError('E_OFFLINE', `${repoLabel(ref)}: ${path} is neither in the cache nor in HF_HUB_CACHE, and --offline allows no network request`, {
        hint: 'run once without --offline, or download the repo with `hf download` first',
      }));
    },
  };
}
