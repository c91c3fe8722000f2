/** The relative-path rule, for the paths an integrity file lists. */

const PATH_MAX = 4096;
const NAME_MAX = 255;

/**
 * The path rule of src/util/paths.ts, copied (this module imports only node: built-ins);
 * test/bounds.test.ts checks that both give the same answer for the same path.
 */
export function checkRelativePath(path: unknown): string | undefined {
  if (typeof path !== 'string' || path.length === 0) return 'path is empty or not a string';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'path contains a control or NUL character';
  if (path.includes('\\')) return 'path contains a backslash';
  if (path.startsWith('/')) return 'path is absolute';
  if (/^[a-zA-Z]:/.test(path)) return 'path starts with a drive letter';
  const length = Buffer.byteLength(path, 'utf8');
  if (length >= PATH_MAX) return `path is ${length} bytes long, more than the ${PATH_MAX - 1} a file system allows`;
  for (const segment of path.split('/')) {
    if (segment === '') return 'path has an empty segment (leading, trailing or double slash)';
    if (segment === '.' || segment === '..') return `path has a "${segment}" segment`;
    const size = Buffer.byteLength(segment, 'utf8');
    if (size > NAME_MAX) return `a path segment is ${size} bytes long, more than the ${NAME_MAX} a file system allows`;
  }
  return undefined;
}

/** For tests: the copied rule, to compare with src/util/paths.ts. */
export const checkRelativePathForTest = checkRelativePath;
