/**
 * The models.lock format shared by its readers and writers: the header, the keys, which scalars the
 * canonical layout writes plain, the spec hash, and where each parsed entry sits in the file.
 */
import { sha256 } from '../util/hash.js';
import type { LockedModel } from './lockfile.js';

export const HEADER = ' models.lock — written by xprim-models; do not edit by hand';
export const HEADER_BYTES = Buffer.from(`#${HEADER}\n`);
export const LOCK_HINT = 'models.lock is written by xprim-models: restore it from version control, or delete it and run `models lock`';
export const MODEL_KEYS = ['spec', 'model', 'version', 'resolved', 'registry', 'manifest', 'size', 'files'] as const;
export const PINNED_KEYS = ['kind', 'spec', 'source', 'manifest', 'size', 'files'] as const;
export const FILE_KEYS = ['path', 'size', 'sha256'] as const;
export const MAX_SIZE = 2 ** 50;

// Where each parsed entry (and each of its files) sits in models.lock, for messages that name the line.
const positions = new WeakMap<LockedModel, { line: number; files: number[] }>();

/** The 1-based line of a parsed entry in models.lock, or of its file `fileIndex`; undefined when not parsed from a file. */
export function lockLine(entry: LockedModel, fileIndex?: number): number | undefined {
  const at = positions.get(entry);
  return fileIndex === undefined ? at?.line : (at?.files[fileIndex] ?? at?.line);
}

/** Remember where a parsed entry sits (its line, and each file's). */
export function recordPosition(entry: LockedModel, at: { line: number; files: number[] }): void {
  positions.set(entry, at);
}

/** The resolution inputs, hashed: what makes a lock entry stale when it changes. */
export function specHash(entry: { registry: string; model: string; version: string }): string {
  // Explicit key order: the canonical form must not depend on how the caller built the object.
  return sha256(JSON.stringify({ model: entry.model, registry: entry.registry, version: entry.version }));
}

// Code-unit order: the same bytes whatever the machine's locale.
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// A plain YAML scalar that is certainly a string (not a number, boolean or null) and needs no quoting.
const PLAIN = /^[A-Za-z0-9_][A-Za-z0-9_./@+-]*$/;
const NOT_A_STRING = /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+|0o[0-7]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|true|True|TRUE|false|False|FALSE|null|Null|NULL|~)$/;
export const plainString = (value: string | undefined): value is string => value !== undefined && PLAIN.test(value) && !NOT_A_STRING.test(value);
// Block values may also hold a URL: a colon not followed by a space is plain YAML there.
const BLOCK_PLAIN = /^[A-Za-z0-9_./][A-Za-z0-9_./@+:-]*[A-Za-z0-9_./@+-]$|^[A-Za-z0-9_]$/;
export const blockString = (value: string | undefined): value is string => value !== undefined && BLOCK_PLAIN.test(value) && !NOT_A_STRING.test(value);
export const plainSize = (value: string | undefined): number | undefined => {
  if (value === undefined || !/^(?:0|[1-9][0-9]{0,15})$/.test(value)) return undefined;
  const n = Number(value);
  return n <= MAX_SIZE ? n : undefined;
};
