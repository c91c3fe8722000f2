/**
 * What an archive entry's name may be, and how `strip: N` maps it to a path in the model folder.
 * These rules must agree with the manifest path rules (`checkRelativePath` in
 * src/registry/manifest.ts): a file an archive installs is recorded in the lock like a manifest file,
 * so any path one accepts the other must accept too. Two deliberate extras for raw archive names:
 * `.` and empty segments (`./a//b`, a folder's trailing `/`) are normalised away rather than refused,
 * because ordinary tar and zip tools write them; and lengths count UTF-8 bytes, as file systems do.
 */
import { ModelsError } from '../util/errors.js';

export const MAX_PATH_BYTES = 4096;
export const MAX_SEGMENT_BYTES = 255;

/** Why a raw entry name is unsafe, or undefined when it is fine. */
export function entryNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'has an empty name';
  if (Buffer.byteLength(name, 'utf8') > MAX_PATH_BYTES) return `has a name longer than ${MAX_PATH_BYTES} bytes`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'has a control or NUL character in its name';
  if (name.includes('\\')) return 'has a backslash in its name';
  if (name.startsWith('/')) return 'has an absolute path';
  if (/^[a-zA-Z]:/.test(name)) return 'starts with a drive letter';
  for (const segment of name.split('/')) {
    if (segment === '..') return 'has a ".." segment';
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) return `has a path segment longer than ${MAX_SEGMENT_BYTES} bytes`;
  }
  return undefined;
}

/**
 * Drop `strip` leading components, as GNU tar's --strip-components counts them: repeated slashes
 * collapse, and a leading `.` is a component (`./model/x` with strip 1 is `model/x`). Remaining `.`
 * segments are dropped. Returns '' when nothing is left. Call only on a name that passed
 * `entryNameProblem`.
 */
export function stripEntryName(name: string, strip: number): string {
  const segments = name.split('/').filter((s) => s !== '');
  return segments
    .slice(strip)
    .filter((s) => s !== '.')
    .join('/');
}

const SHOWN_NAME_CHARS = 200;

/** The one error every refusal raises: exit 6, naming the archive and the entry (quoted, so control characters show escaped). */
export function refuseEntry(archive: string, entry: string | undefined, problem: string, hint?: string): ModelsError {
  const shown = entry !== undefined && entry.length > SHOWN_NAME_CHARS ? `${entry.slice(0, SHOWN_NAME_CHARS)}…` : entry;
  const where = shown === undefined ? `archive ${archive}` : `archive ${archive}: entry ${JSON.stringify(shown)}`;
  return new ModelsError('E_INTEGRITY', `${where} ${problem}; the whole archive was refused`, {
    hint: hint ?? 'the archive is unsafe or damaged; nothing was installed from it. Ask its publisher for a clean archive',
  });
}
