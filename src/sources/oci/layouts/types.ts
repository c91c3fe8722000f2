/** What a manifest's layers become: files (one blob each) or tar archives unpacked into the model folder. */
import { ModelsError } from '../../../util/errors.js';

export type LayoutName = 'oras' | 'modelpack' | 'kitops' | 'ollama';

export interface FileLayer {
  kind: 'file';
  /** Where the file is installed, relative to the model folder. */
  path: string;
  digest: string;
  size: number;
}

export interface ArchiveLayer {
  kind: 'archive';
  /** The file or folder the archive holds (its files are this path or under it; `.` is the whole folder). */
  path: string;
  digest: string;
  size: number;
  format: 'tar' | 'tar.gz';
}

export type Layer = FileLayer | ArchiveLayer;

export function layoutError(where: string, problem: string, hint = 'tell whoever pushed it; nothing was written'): ModelsError {
  return new ModelsError('E_MANIFEST', `${where}: ${problem}`, { hint });
}

/** tar / tar+gzip from a media type's suffix; undefined for anything else. */
export function tarFormat(mediaType: string): 'tar' | 'tar.gz' | undefined {
  if (/[.+]tar$/.test(mediaType)) return 'tar';
  if (/[.+]tar\+gzip$/.test(mediaType) || /[.+]tar\.gzip$/.test(mediaType)) return 'tar.gz';
  return undefined;
}

/** The archive layer a file came out of: the one whose path is the longest that holds it. */
export function archiveHolding(path: string, archives: readonly ArchiveLayer[]): ArchiveLayer | undefined {
  let best: ArchiveLayer | undefined;
  let bestLength = -1;
  for (const a of archives) {
    const p = a.path.replace(/\/+$/, '');
    const holds = p === '.' || p === '' || path === p || path.startsWith(`${p}/`);
    const length = p === '.' ? 0 : p.length;
    if (holds && length > bestLength) {
      best = a;
      bestLength = length;
    }
  }
  return best;
}
