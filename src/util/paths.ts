/**
 * The one check of a relative path the tool will create: a manifest's file paths, models.yaml's
 * `path:`, the lock's and the install record's paths. Lengths are counted in UTF-8 bytes, as file
 * systems count them (100 CJK characters are 300 bytes), so that a name no disk can hold is refused
 * before anything is downloaded. src/runtime/paths.ts keeps a copy (the runtime imports only node:
 * built-ins); test/bounds.test.ts checks that both give the same answers.
 */
import { isAbsolute, join, relative, sep } from 'node:path';

/** Bytes in one path segment (Linux, macOS, Windows NTFS). */
export const NAME_MAX = 255;
/** Bytes in a whole path, its terminating NUL included. */
export const PATH_MAX = 4096;
/**
 * What the tool appends to a model folder's name while it installs (`.xprim-staging-<pid>-<hex>`,
 * `.xprim-old-…`): the last segment of a `path:` must leave room for it.
 */
export const FOLDER_SUFFIX_BYTES = 40;

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/**
 * Why `path` is not a safe relative path, or undefined: relative, normalised, posix; no `.`/`..`
 * segment (a name that merely starts with dots, like `..vad`, is a name), no empty segment, no
 * backslash, control character or drive letter; at most NAME_MAX bytes a segment and PATH_MAX
 * bytes in all.
 */
export function checkRelativePath(path: unknown): string | undefined {
  if (typeof path !== 'string' || path.length === 0) return 'path is empty or not a string';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'path contains a control or NUL character';
  if (path.includes('\\')) return 'path contains a backslash';
  if (path.startsWith('/')) return 'path is absolute';
  if (/^[a-zA-Z]:/.test(path)) return 'path starts with a drive letter';
  const length = bytes(path);
  if (length >= PATH_MAX) return `path is ${length} bytes long, more than the ${PATH_MAX - 1} a file system allows`;
  for (const segment of path.split('/')) {
    if (segment === '') return 'path has an empty segment (leading, trailing or double slash)';
    if (segment === '.' || segment === '..') return `path has a "${segment}" segment`;
    const size = bytes(segment);
    if (size > NAME_MAX) return `a path segment is ${size} bytes long, more than the ${NAME_MAX} a file system allows`;
  }
  return undefined;
}

/** A model folder (`path:` in models.yaml): a safe relative path whose last name leaves room for the install suffixes. */
export function checkFolderPath(path: string): string | undefined {
  const problem = checkRelativePath(path);
  if (problem) return problem;
  const last = bytes(path.slice(path.lastIndexOf('/') + 1));
  if (last > NAME_MAX - FOLDER_SUFFIX_BYTES) return `the folder name is ${last} bytes long; at most ${NAME_MAX - FOLDER_SUFFIX_BYTES} leave room for the install's temporary names`;
  return undefined;
}

/** Whether `path` is strictly inside `root` (both absolute). `root/..vad` is inside; `root/../vad` is not. */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** The first file whose absolute path under the model folder `dest` (while staged) would exceed PATH_MAX. */
export function longestPathProblem(dest: string, files: readonly { path: string }[]): string | undefined {
  const base = bytes(dest) + FOLDER_SUFFIX_BYTES;
  for (const file of files) {
    const length = base + 1 + bytes(file.path);
    if (length >= PATH_MAX) return `${join(dest, file.path).slice(0, 80)}… would be ${length} bytes long (a file system allows ${PATH_MAX - 1})`;
  }
  return undefined;
}
