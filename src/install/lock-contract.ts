/**
 * The lock is a contract: an entry's files (paths, sizes, sha256) are exactly those of the manifest
 * its `manifest:` hash names. A lock edited by hand (a changed sha256, a manifest hash swapped for
 * another model's) disagrees with that manifest, and every command refuses it the same way: an
 * invalid lock (exit 2) naming models.lock and the line, before anything is installed or verified.
 */
import { ModelsError } from '../util/errors.js';
import { lockLine } from '../project/lock-format.js';
import type { LockedModel } from '../project/lockfile.js';
import type { ManifestLayout } from '../registry/manifest.js';
import type { InstalledModel } from './state.js';
import { contrastHashes } from '../util/hash-contrast.js';

interface ReferenceFile {
  path: string;
  size: number;
  sha256?: string | undefined;
}

interface Disagreement {
  /** The lock's file index the problem is on; undefined for the entry as a whole. */
  file?: number;
  problem: string;
}


/**
 * Compare the lock's files with a reference list. `strict` (the manifest itself): a sha256 must be
 * present exactly when the manifest has one. Not strict (the install record, whose hashes were
 * computed from the verified bytes): a sha256 in the lock must equal the recorded one.
 */
function disagreement(locked: LockedModel, reference: readonly ReferenceFile[], size: number, strict: boolean): Disagreement | undefined {
  const count = Math.min(locked.files.length, reference.length);
  for (let i = 0; i < count; i++) {
    const mine = locked.files[i] as LockedModel['files'][number];
    const theirs = reference[i] as ReferenceFile;
    if (mine.path !== theirs.path) return { file: i, problem: `files[${i}].path is "${mine.path}" but the manifest has "${theirs.path}"` };
    if (mine.size !== theirs.size) return { file: i, problem: `files[${i}] "${mine.path}": size is ${mine.size} but the manifest says ${theirs.size}` };
    const shaDiffers = strict ? mine.sha256 !== theirs.sha256 : mine.sha256 !== undefined && mine.sha256 !== theirs.sha256;
    if (shaDiffers) {
      const [inLock, inManifest] = contrastHashes(mine.sha256, theirs.sha256);
      return { file: i, problem: `files[${i}] "${mine.path}": sha256 is ${inLock} but the manifest says ${inManifest}` };
    }
  }
  if (locked.files.length !== reference.length) return { problem: `lists ${locked.files.length} files but the manifest has ${reference.length}` };
  if (locked.size !== size) return { problem: `size is ${locked.size} but the manifest says ${size}` };
  return undefined;
}

function contractError(lockPath: string, name: string, locked: LockedModel, found: Disagreement): ModelsError {
  const line = lockLine(locked, found.file) ?? 1;
  return new ModelsError('E_LOCKFILE', `${lockPath}:${line}: models.${name} disagrees with its manifest ${locked.manifest.slice(0, 12)}: ${found.problem}`, {
    hint: `models.lock may have been edited by hand: restore it from version control, or run \`models lock --update ${name}\` (nothing was installed)`,
    file: lockPath,
    line,
  });
}

/**
 * Once a reference (the manifest's spans, an install record) agrees with the lock entry, let it
 * hold the lock's strings: each path and sha256 is then in memory once, not once per copy (about
 * 12 MB a copy for 100,000 files).
 */
export function shareLockedStrings(locked: LockedModel, reference: ReferenceFile[]): void {
  const count = Math.min(locked.files.length, reference.length);
  for (let i = 0; i < count; i++) {
    const mine = locked.files[i] as LockedModel['files'][number];
    const theirs = reference[i] as ReferenceFile;
    if (theirs.path === mine.path) theirs.path = mine.path;
    if (mine.sha256 !== undefined && theirs.sha256 === mine.sha256) theirs.sha256 = mine.sha256;
  }
}

/** Throw E_LOCKFILE (exit 2) when a lock entry's files are not exactly those of its manifest. */
export function assertLockMatchesManifest(lockPath: string, name: string, locked: LockedModel, layout: ManifestLayout): void {
  const found = layout.hash === locked.manifest ? disagreement(locked, layout.files, layout.totalSize, true) : { problem: `the manifest loaded is ${layout.hash.slice(0, 12)}` };
  if (found) throw contractError(lockPath, name, locked, found);
}

/**
 * Whether the install record (written from the verified manifest named by the same hash) agrees
 * with the lock entry. False for a record of another manifest: only the manifest can tell then.
 */
export function lockMatchesRecord(locked: LockedModel, record: InstalledModel | undefined): boolean {
  return record !== undefined && record.manifest === locked.manifest && disagreement(locked, record.files, record.size, false) === undefined;
}

/** Throw E_LOCKFILE when the install record of the same manifest contradicts the lock entry. */
export function assertLockMatchesRecord(lockPath: string, name: string, locked: LockedModel, record: InstalledModel | undefined): void {
  if (!record || record.manifest !== locked.manifest) return;
  const found = disagreement(locked, record.files, record.size, false);
  if (found) throw contractError(lockPath, name, locked, found);
}

/**
 * The check for commands that read the lock without installing (verify, doctor): against the
 * install record when it is of the same manifest, else against the manifest when `loadLayout` can
 * get it (undefined: unavailable, e.g. offline, and the entry is taken as it is).
 */
export async function checkLockEntry(
  lockPath: string,
  name: string,
  locked: LockedModel,
  record: InstalledModel | undefined,
  loadLayout: () => Promise<ManifestLayout | undefined>,
): Promise<void> {
  if (record && record.manifest === locked.manifest) return assertLockMatchesRecord(lockPath, name, locked, record);
  const layout = await loadLayout();
  if (layout) assertLockMatchesManifest(lockPath, name, locked, layout);
}
