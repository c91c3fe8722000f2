/**
 * models.lock: the hash-pinned resolution of models.yaml. Written only by the tool, byte-for-byte
 * deterministic so that it diffs well and an unchanged resolve rewrites nothing; read strictly,
 * because `install --frozen` trusts it to pin every byte. Here: its types, reading it and whether it is
 * in sync; lock-format.ts, lock-canonical-reader.ts, lock-yaml-reader.ts and lock-writer.ts do the rest.
 */
import { readFile, stat } from 'node:fs/promises';
import { dictionary } from '../util/dictionary.js';
import { ModelsError } from '../util/errors.js';
import { sha256 } from '../util/hash.js';
import type { ModelEntry, ProjectConfig, SourceKind } from './config.js';
import { readCanonical, readCanonicalBytes } from './lock-canonical-reader.js';
import { LOCK_HINT, byCodeUnit, specHash } from './lock-format.js';
import { LockReader } from './lock-yaml-reader.js';
import type { LockedPin } from './pins.js';

export interface LockedFile {
  path: string;
  size: number;
  sha256?: string;
}

export interface LockedModel {
  spec: string;
  /** Absent (in the file and here) for XPRIM entries, as in every lock before source kinds. */
  kind?: SourceKind;
  /** xprim: the registry model. Other kinds: derived from the pin, for messages (not written). */
  model: string;
  version: string;
  resolved: string;
  registry: string;
  /** xprim: the manifest hash. url, hf: the content key of pin and files; oci: the manifest digest's hex. */
  manifest: string;
  size: number;
  files: LockedFile[];
  /** Every kind but xprim: the pinned source (models.lock `source:`). */
  pin?: LockedPin;
  /** What resolving it did that the user should hear (a url: pinned on first use). Not written. */
  note?: string;
}

export interface Lockfile {
  lockfileVersion: 1;
  models: Record<string, LockedModel>;
}

export interface LockStatus {
  missing: string[];
  stale: string[];
  extra: string[];
  inSync: boolean;
}

/** The spec of an entry of any kind: xprim as specHash (locks before source kinds stay valid); else its source keys. */
export function entrySpecHash(entry: Pick<ModelEntry, 'kind' | 'registry' | 'model' | 'version' | 'source'>): string {
  if (entry.kind === 'xprim' || !entry.source) return specHash(entry);
  const source = entry.source as unknown as Record<string, unknown>;
  return sha256(JSON.stringify(Object.keys(source).sort().map((k) => [k, source[k]])));
}

/**
 * Memory bounds. The lock we write is read line by line in linear time and small memory, up to
 * MAX_LOCK_BYTES (about 500,000 files). A lock in any other layout goes through the YAML parser,
 * which needs some 70 bytes of memory per byte of input, so only up to MAX_YAML_LOCK_BYTES.
 */
export const MAX_LOCK_BYTES = 64 * 1024 * 1024;
export const MAX_YAML_LOCK_BYTES = 2 * 1024 * 1024;

/** Refuse a models.lock too big to read, before reading it. */
export function checkLockSize(bytes: number, file: string): void {
  if (bytes > MAX_LOCK_BYTES) {
    throw new ModelsError('E_LOCKFILE', `${file}: ${bytes} bytes, more than the ${MAX_LOCK_BYTES} a models.lock may have`, { hint: LOCK_HINT, file });
  }
}

/** Parse models.lock (its text, or its bytes) strictly: any deviation is an E_LOCKFILE error naming file:line:col. */
export function parseLockfile(input: string | Uint8Array, file: string): Lockfile {
  checkLockSize(input.length, file);
  // The YAML parser costs ~120 ms and ~30 MB on a 2,000-file lock; the lock we write has one
  // canonical shape, read here line by line (CRLF too: git may check it out so on Windows).
  // Anything else, or anything invalid, goes to the full parser, which accepts any YAML and names
  // the line and column of a problem.
  const canonical = typeof input === 'string' ? readCanonical(input) : readCanonicalBytes(Buffer.from(input.buffer, input.byteOffset, input.byteLength));
  if (canonical) return canonical;
  const text = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  if (text.length > MAX_YAML_LOCK_BYTES) {
    throw new ModelsError('E_LOCKFILE', `${file}: not in the layout xprim-models writes, and at ${text.length} bytes too big to read as general YAML (at most ${MAX_YAML_LOCK_BYTES})`, {
      hint: 'a lock this big is read only as xprim-models writes it: restore it from version control, or delete it and run `models lock`',
      file,
    });
  }
  return new LockReader(text, file).parse();
}

export async function readLockfile(file: string): Promise<Lockfile | undefined> {
  let text: Buffer;
  try {
    checkLockSize((await stat(file)).size, file);
    text = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (error instanceof ModelsError) throw error;
    throw new ModelsError('E_LOCKFILE', `${file}: cannot read: ${(error as Error).message}`, {
      hint: 'check the permissions of models.lock',
      file,
      cause: error,
    });
  }
  return parseLockfile(text, file);
}

export function lockStatus(config: ProjectConfig, lock: Lockfile | undefined): LockStatus {
  const locked = lock?.models ?? dictionary<LockedModel>();
  const missing: string[] = [];
  const stale: string[] = [];
  const names = new Set<string>();
  for (const entry of config.models) {
    names.add(entry.name);
    const l = Object.prototype.hasOwnProperty.call(locked, entry.name) ? locked[entry.name] : undefined;
    if (!l) missing.push(entry.name);
    else if (l.spec !== entrySpecHash(entry) || (l.kind ?? 'xprim') !== entry.kind) stale.push(entry.name);
  }
  const extra = Object.keys(locked)
    .filter((name) => !names.has(name))
    .sort(byCodeUnit);
  return { missing, stale, extra, inSync: missing.length === 0 && stale.length === 0 && extra.length === 0 };
}
