/**
 * The files a pinned manifest installs: file layers as they are (the blob digest is the file's
 * sha256, nothing is hashed twice), archive layers downloaded into the store and listed under the
 * archive rules (exit 6 for a hostile entry), `files:` / `exclude:` globs applied, and every path
 * checked like any manifest path (relative, normalised, unique, no file that is also a folder).
 */
import picomatch from 'picomatch';
import type { LockedFile } from '../../project/lockfile.js';
import type { Session } from '../../project/session.js';
import { listArchive } from '../../archive/extract.js';
import { validateManifest } from '../../registry/manifest.js';
import { ModelsError } from '../../util/errors.js';
import { storedBlob } from './blobs.js';
import { type ArchiveLayer, type Layer, archiveHolding } from './layouts/index.js';
import type { OciReference } from './reference.js';

/** The archive's name in messages: the layer's path and digest. */
export function archiveName(layer: ArchiveLayer): string {
  return `layer ${layer.digest.slice(0, 19)} (${layer.path})`;
}

function selector(files: string[], exclude: string[]): (path: string) => boolean {
  const include = files.length > 0 ? picomatch(files, { dot: true }) : () => true;
  const drop = exclude.length > 0 ? picomatch(exclude, { dot: true }) : () => false;
  return (path) => include(path) && !drop(path);
}

export interface FilesOptions {
  session: Session;
  ref: OciReference;
  layers: Layer[];
  files: string[];
  exclude: string[];
  where: string;
  signal?: AbortSignal | undefined;
}

export async function filesOfLayers(options: FilesOptions): Promise<LockedFile[]> {
  const { session, ref, layers, where, signal } = options;
  const wanted = selector(options.files, options.exclude);
  const archives = layers.filter((l): l is ArchiveLayer => l.kind === 'archive');
  const out: LockedFile[] = [];
  for (const layer of layers) {
    if (layer.kind === 'file') {
      if (wanted(layer.path)) out.push({ path: layer.path, size: layer.size, sha256: layer.digest.slice('sha256:'.length) });
      continue;
    }
    const name = archiveName(layer);
    const path = await storedBlob(session, session.store, ref, layer.digest, layer.size, `${where}: ${name}`, signal);
    const listed = await listArchive({ archivePath: path, name: `${where}: ${name}`, format: layer.format, strip: 0, ...(signal ? { signal } : {}) });
    for (const file of listed) {
      // Each file is found again at install time by the layer whose path holds it.
      if (archiveHolding(file.path, archives) !== layer) {
        throw new ModelsError('E_MANIFEST', `${where}: ${name} holds ${file.path}, outside its path "${layer.path}"`, { hint: 'tell whoever pushed it: each layer must hold only the files at its path (nothing was written)' });
      }
      if (wanted(file.path)) out.push({ path: file.path, size: file.size, sha256: file.sha256 });
    }
  }
  if (out.length === 0) {
    const all = layers.map((l) => l.path).join(', ') || '(no layers)';
    throw new ModelsError('E_CONFIG', `${where}: ${options.files.length + options.exclude.length > 0 ? 'files:/exclude: select none of its files' : 'the manifest has no files'} (layers: ${all.slice(0, 300)})`, {
      hint: 'check the globs in models.yaml (they match paths like weights/*.safetensors)',
    });
  }
  const sorted = out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  checkPaths(sorted, where);
  return sorted;
}

/** The one path rule of every manifest: a file list that fails it is refused whole. */
export function checkPaths(files: LockedFile[], where: string): void {
  const total = files.reduce((sum, f) => sum + f.size, 0);
  validateManifest(
    { total_size: total, chunk_size: Math.max(1, total), chunks: total > 0 ? ['0'.repeat(64)] : [], files },
    where,
  );
}
