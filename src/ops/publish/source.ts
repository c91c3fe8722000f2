/**
 * The files `models publish` reads: every regular file under the source folder, in the manifest's
 * order (UTF-8 bytes of the posix relative path). Symlinks are followed only while they stay inside
 * the folder; names that clash on macOS or Windows, cycles and special files are refused.
 */
import type { Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { checkRelativePath } from '../../registry/manifest.js';
import { storageError } from '../../util/errors.js';
import { compareUtf8 } from '../../util/utf8-order.js';
import { usage } from './options.js';

export interface SourceFile {
  /** Posix path relative to the source folder: the manifest path. */
  path: string;
  /** Where to read the bytes (the target when the entry is an in-folder symlink). */
  readPath: string;
  size: number;
}

export interface Source {
  /** The source folder's real path. */
  root: string;
  files: SourceFile[];
  totalSize: number;
}

type Kind = 'file' | 'dir' | 'other';

/** What a walk needs besides the folder it is in. */
interface Walk {
  /** As the user wrote it, for messages. */
  sourceDir: string;
  root: string;
  files: SourceFile[];
}

export function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

/** The folder's files, sorted; E_USAGE when there are none or their names would clash on install. */
export async function scanSource(sourceDir: string): Promise<Source> {
  const root = await sourceRoot(sourceDir);
  const files: SourceFile[] = [];
  await walk({ sourceDir, root, files }, root, '', new Set([root]));
  files.sort((a, b) => compareUtf8(a.path, b.path));
  refuseCaseClashes(sourceDir, files);
  if (files.length === 0) {
    throw usage(`source folder ${sourceDir} holds no files`, 'put the model files in the folder, then publish');
  }
  return { root, files, totalSize: files.reduce((sum, f) => sum + f.size, 0) };
}

async function sourceRoot(sourceDir: string): Promise<string> {
  let root: string;
  try {
    root = await realpath(sourceDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw usage(`source folder ${sourceDir} does not exist`, 'pass the folder that holds the model files');
    }
    throw storageError(error, 'read', sourceDir);
  }
  const rootStat = await stat(root).catch((error: unknown) => {
    throw storageError(error, 'read', sourceDir);
  });
  if (!rootStat.isDirectory()) {
    throw usage(`source ${sourceDir} is not a folder`, 'pass the folder that holds the model files, not a file');
  }
  return root;
}

/** `ancestors` holds the real paths of the folders being walked, to refuse symlink cycles. */
async function walk(ctx: Walk, realDir: string, relDir: string, ancestors: Set<string>): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(realDir, { withFileTypes: true });
  } catch (error) {
    throw storageError(error, 'read the folder', join(ctx.sourceDir, relDir));
  }
  for (const entry of entries) {
    const rel = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
    const shown = join(ctx.sourceDir, rel);
    const { real, kind } = await classify(ctx, entry, join(realDir, entry.name), shown);
    const problem = checkRelativePath(rel);
    if (problem) throw usage(`cannot publish ${shown}: ${problem}`, 'rename the file to a portable name');
    if (kind === 'other') {
      throw usage(`${shown} is not a regular file or folder`, 'remove it from the source folder (sockets, pipes and devices cannot be published)');
    }
    if (kind === 'dir') {
      if (ancestors.has(real)) {
        throw usage(`symlink ${shown} makes a cycle`, 'remove the link: it points at one of its own parent folders');
      }
      await walk(ctx, real, rel, new Set([...ancestors, real]));
      continue;
    }
    const info = await stat(real).catch((error: unknown) => {
      throw storageError(error, 'read', shown);
    });
    ctx.files.push({ path: rel, readPath: real, size: info.size });
  }
}

/** What an entry is, and where its bytes are: a symlink is followed, and must stay inside the folder. */
async function classify(ctx: Walk, entry: Dirent, path: string, shown: string): Promise<{ real: string; kind: Kind }> {
  if (!entry.isSymbolicLink()) return { real: path, kind: entry.isFile() ? 'file' : entry.isDirectory() ? 'dir' : 'other' };
  let real: string;
  try {
    real = await realpath(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw usage(`symlink ${shown} is broken`, 'remove the link or point it at a file inside the source folder');
    }
    throw storageError(error, 'resolve the symlink', shown);
  }
  if (!isInside(real, ctx.root)) {
    throw usage(`symlink ${shown} points outside the source folder (to ${real})`, 'copy the file into the source folder instead of linking to it');
  }
  const target = await stat(real).catch((error: unknown) => {
    throw storageError(error, 'read', shown);
  });
  return { real, kind: target.isFile() ? 'file' : target.isDirectory() ? 'dir' : 'other' };
}

/**
 * Paths that differ only in case, or a file and a folder with the same name ignoring case, collide
 * on macOS and Windows: clients refuse such manifests, so refuse to write one.
 */
function refuseCaseClashes(sourceDir: string, files: SourceFile[]): void {
  const seen = new Map<string, string>();
  for (const file of files) {
    const other = seen.get(file.path.toLowerCase());
    if (other !== undefined) {
      throw usage(`${join(sourceDir, other)} and ${join(sourceDir, file.path)} differ only in case`, 'rename one of them');
    }
    seen.set(file.path.toLowerCase(), file.path);
  }
  for (const file of files) {
    const segments = file.path.toLowerCase().split('/');
    for (let n = 1; n < segments.length; n++) {
      const clash = seen.get(segments.slice(0, n).join('/'));
      if (clash !== undefined) {
        throw usage(`${join(sourceDir, clash)} clashes with the folder of ${join(sourceDir, file.path)} (names differ only in case)`, 'rename one of them');
      }
    }
  }
}
