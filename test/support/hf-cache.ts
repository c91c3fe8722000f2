/**
 * Writes a local Hugging Face cache the way huggingface_hub's file_download.py lays it out, so tests
 * can check that a blob already there is reused (hashed, never re-downloaded, never written to):
 *   <cache>/<models|datasets>--<org>--<name>/blobs/<etag>          the bytes (etag: sha256 for LFS, git sha1 otherwise)
 *   <cache>/…/snapshots/<commit>/<path>                            relative symlink to ../../blobs/<etag>
 *   <cache>/…/refs/<revision>                                      the commit, for a branch or tag name
 * (repo_folder_name, _cache_commit_hash_for_specific_revision, _create_symlink in file_download.py).
 */
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

export interface CachedFile {
  path: string;
  /** The normalised ETag huggingface_hub names the blob by. */
  etag: string;
  /** The bytes, or a file to copy them from. */
  source: Buffer | string;
}

/** Returns the repo's cache folder. */
export async function writeHfCache(cacheDir: string, repo: { id: string; type: 'model' | 'dataset' }, commit: string, files: CachedFile[], refs: string[] = []): Promise<string> {
  const folder = join(cacheDir, [`${repo.type}s`, ...repo.id.split('/')].join('--'));
  await mkdir(join(folder, 'blobs'), { recursive: true });
  for (const f of files) {
    const blob = join(folder, 'blobs', f.etag);
    if (typeof f.source === 'string') await copyFile(f.source, blob);
    else await writeFile(blob, f.source);
    const link = join(folder, 'snapshots', commit, ...f.path.split('/'));
    await mkdir(dirname(link), { recursive: true });
    await symlink(relative(dirname(link), blob), link);
  }
  for (const ref of refs) {
    const file = join(folder, 'refs', ...ref.split('/'));
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, commit);
  }
  return folder;
}
