/**
 * The layout of a model whose source serves whole files (a `url:` file, a Hub repo, OCI layers):
 * one object per non-empty file, addressed by the file's sha256, so the shared fetch engine (resume,
 * retries, hashing while streaming) fetches each file as one "chunk".
 */
import type { LockedFile } from '../project/lockfile.js';
import { type Manifest, type ManifestLayout, layoutManifest } from '../registry/manifest.js';

export function wholeFileLayout(files: LockedFile[], key: string): ManifestLayout {
  const objects = files.filter((f) => f.size > 0);
  const manifest: Manifest = {
    total_size: files.reduce((sum, f) => sum + f.size, 0),
    chunk_size: Math.max(1, ...objects.map((f) => f.size)),
    chunks: objects.map((f) => f.sha256 as string),
    chunk_sizes: objects.map((f) => f.size),
    files: files.map((f) => ({ path: f.path, size: f.size, ...(f.sha256 ? { sha256: f.sha256 } : {}) })),
  };
  return layoutManifest(manifest, key);
}

/** The files of an archive model: the layout has no chunks (the archive is the one download). */
export function extractedLayout(files: LockedFile[], key: string): ManifestLayout {
  const manifest: Manifest = {
    total_size: files.reduce((sum, f) => sum + f.size, 0),
    chunk_size: 1,
    chunks: [],
    chunk_sizes: [],
    files: files.map((f) => ({ path: f.path, size: f.size, ...(f.sha256 ? { sha256: f.sha256 } : {}) })),
  };
  return layoutManifest(manifest, key);
}
