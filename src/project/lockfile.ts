/**
 * models.lock: the hash-pinned resolution of models.yaml. Written only by the tool, byte-for-byte
 * deterministic so that it diffs well and an unchanged resolve rewrites nothing; read strictly,
 * because `install --frozen` trusts it to pin every byte.
 */
import { dictionary } from '../util/dictionary.js';
import { isAscii } from 'node:buffer';
import { readFile, stat } from 'node:fs/promises';
import { Document, isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type YAMLMap } from 'yaml';
import { ModelsError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fsutil.js';
import { isSha256, sha256 } from '../util/hash.js';
import { checkRelativePath } from '../registry/manifest.js';
import { NAME_PATTERN, type ModelEntry, type ProjectConfig, type SourceKind } from './config.js';
import { type LockedPin, PINNED_KINDS, checkPinValue, contentKey, describePin, missingPinKeys } from './pins.js';

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

const HEADER = ' models.lock — written by xprim-models; do not edit by hand';
const LOCK_HINT = 'models.lock is written by xprim-models: restore it from version control, or delete it and run `models lock`';
const MODEL_KEYS = ['spec', 'model', 'version', 'resolved', 'registry', 'manifest', 'size', 'files'] as const;
const PINNED_KEYS = ['kind', 'spec', 'source', 'manifest', 'size', 'files'] as const;
const FILE_KEYS = ['path', 'size', 'sha256'] as const;
const MAX_SIZE = 2 ** 50;

// Where each parsed entry (and each of its files) sits in models.lock, for messages that name the line.
const positions = new WeakMap<LockedModel, { line: number; files: number[] }>();

/** The 1-based line of a parsed entry in models.lock, or of its file `fileIndex`; undefined when not parsed from a file. */
export function lockLine(entry: LockedModel, fileIndex?: number): number | undefined {
  const at = positions.get(entry);
  return fileIndex === undefined ? at?.line : (at?.files[fileIndex] ?? at?.line);
}

/** The resolution inputs, hashed: what makes a lock entry stale when it changes. */
export function specHash(entry: { registry: string; model: string; version: string }): string {
  // Explicit key order: the canonical form must not depend on how the caller built the object.
  return sha256(JSON.stringify({ model: entry.model, registry: entry.registry, version: entry.version }));
}

/** The spec of an entry of any kind: xprim as above (locks before source kinds stay valid); else its source keys. */
export function entrySpecHash(entry: Pick<ModelEntry, 'kind' | 'registry' | 'model' | 'version' | 'source'>): string {
  if (entry.kind === 'xprim' || !entry.source) return specHash(entry);
  const source = entry.source as unknown as Record<string, unknown>;
  return sha256(JSON.stringify(Object.keys(source).sort().map((k) => [k, source[k]])));
}

// --- parse ---------------------------------------------------------------------------------------

class LockReader {
  private readonly lineCounter = new LineCounter();

  constructor(
    private readonly text: string,
    private readonly file: string,
  ) {}

  fail(offset: number | undefined, message: string, hint = LOCK_HINT): never {
    const { line, col } = this.lineCounter.linePos(offset ?? 0);
    throw new ModelsError('E_LOCKFILE', `${this.file}:${line}:${col}: ${message}`, {
      hint,
      file: this.file,
      line,
      column: col,
    });
  }

  at(node: Node | null | undefined, fallback?: Node | null): number | undefined {
    return node?.range?.[0] ?? fallback?.range?.[0] ?? undefined;
  }

  /** The pairs of a map, keyed by their string keys, rejecting keys outside `allowed`. */
  fields(map: YAMLMap, where: string, allowed: readonly string[]): Map<string, { key: Node; value: Node | null }> {
    const out = new Map<string, { key: Node; value: Node | null }>();
    for (const pair of map.items) {
      const key = pair.key as Node | null;
      if (!isScalar(key) || typeof key.value !== 'string') this.fail(this.at(key, map), `${where}: expected string keys`);
      const name = key.value as string;
      if (!allowed.includes(name)) {
        this.fail(this.at(key), `${where}: unknown key "${name}": expected ${allowed.join(', ')}`);
      }
      out.set(name, { key, value: (pair.value as Node | null) ?? null });
    }
    return out;
  }

  required(
    fields: Map<string, { key: Node; value: Node | null }>,
    name: string,
    where: string,
    owner: Node | null | undefined,
  ): { key: Node; value: Node | null } {
    const field = fields.get(name);
    if (!field) this.fail(this.at(owner), `${where}: missing required key "${name}"`);
    return field;
  }

  valueOffset(field: { key: Node; value: Node | null }): number | undefined {
    const v = field.value;
    const empty = v === null || (isScalar(v) && v.value === null && v.range != null && v.range[0] === v.range[1]);
    return empty ? this.at(field.key) : this.at(v);
  }

  string(field: { key: Node; value: Node | null }, where: string): string {
    const v = field.value;
    if (!isScalar(v) || typeof v.value !== 'string' || v.value === '') {
      this.fail(this.valueOffset(field), `${where}: expected a non-empty string`);
    }
    return v.value as string;
  }

  hash(field: { key: Node; value: Node | null }, where: string): string {
    const v = field.value;
    if (!isScalar(v) || !isSha256(v.value)) {
      this.fail(this.valueOffset(field), `${where}: expected 64 lowercase hex characters (a sha256)`);
    }
    return v.value as string;
  }

  size(field: { key: Node; value: Node | null }, where: string): number {
    const v = field.value;
    const n = isScalar(v) ? v.value : undefined;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > MAX_SIZE) {
      this.fail(this.valueOffset(field), `${where}: expected a non-negative integer byte count`);
    }
    return n;
  }

  parse(): Lockfile {
    const doc = parseDocument(this.text, { lineCounter: this.lineCounter, prettyErrors: false, uniqueKeys: true });
    const syntax = doc.errors[0];
    if (syntax) {
      const message = syntax.code === 'DUPLICATE_KEY' ? 'duplicate key' : `invalid YAML: ${syntax.message.split('\n')[0]}`;
      this.fail(syntax.pos[0], message);
    }
    const root = doc.contents;
    if (!isMap(root)) {
      this.fail(this.at(root as Node | null), root === null ? 'models.lock is empty' : 'expected a mapping with lockfileVersion and models');
    }
    const top = this.fields(root, 'models.lock', ['lockfileVersion', 'models']);
    const versionField = this.required(top, 'lockfileVersion', 'models.lock', root);
    const version = isScalar(versionField.value) ? versionField.value.value : undefined;
    if (version !== 1) {
      const newer = typeof version === 'number' && version > 1;
      this.fail(
        this.valueOffset(versionField),
        newer ? `lockfileVersion ${version} is newer than this xprim-models supports (1)` : 'lockfileVersion: expected 1',
        newer ? 'upgrade xprim-models' : LOCK_HINT,
      );
    }
    const modelsField = this.required(top, 'models', 'models.lock', root);
    const modelsNode = modelsField.value;
    if (!isMap(modelsNode)) this.fail(this.valueOffset(modelsField), 'models: expected a mapping of model names');

    const models = dictionary<LockedModel>();
    for (const pair of modelsNode.items) {
      const key = pair.key as Node | null;
      const name = isScalar(key) ? key.value : undefined;
      if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
        this.fail(this.at(key, modelsNode), `models: invalid model name ${JSON.stringify(name ?? null)}`);
      }
      models[name] = this.parseModel(name, key as Node, (pair.value as Node | null) ?? null);
    }
    return { lockfileVersion: 1, models };
  }

  parseModel(name: string, keyNode: Node, node: Node | null): LockedModel {
    const where = `models.${name}`;
    if (!isMap(node)) this.fail(this.at(node, keyNode), `${where}: expected a mapping`);
    const kindNode = node.get('kind', true) as Node | undefined;
    if (kindNode !== undefined) return this.parsePinned(name, keyNode, node, kindNode);
    const fields = this.fields(node, where, MODEL_KEYS);
    const get = (k: string) => this.required(fields, k, where, keyNode);
    const spec = this.hash(get('spec'), `${where}.spec`);
    const model = this.string(get('model'), `${where}.model`);
    const version = this.string(get('version'), `${where}.version`);
    const resolved = this.string(get('resolved'), `${where}.resolved`);
    const registry = this.string(get('registry'), `${where}.registry`);
    const manifest = this.hash(get('manifest'), `${where}.manifest`);
    const sizeField = get('size');
    const size = this.size(sizeField, `${where}.size`);
    const { files, fileLines } = this.parseFiles(get('files'), where);
    const total = files.reduce((sum, f) => sum + f.size, 0);
    if (total !== size) this.fail(this.valueOffset(sizeField), `${where}.size: is ${size} but the files add up to ${total}`);
    // The spec must be the hash of the entry's own inputs, or a hand edit slipped through.
    if (spec !== specHash({ registry, model, version })) {
      this.fail(this.valueOffset(get('spec')), `${where}.spec does not match its registry, model and version`);
    }
    const entry: LockedModel = { spec, model, version, resolved, registry, manifest, size, files };
    positions.set(entry, { line: this.lineCounter.linePos(this.at(keyNode) ?? 0).line, files: fileLines });
    return entry;
  }

  /** An entry of a kind other than xprim: kind, spec, source (the pin), manifest, size, files. */
  parsePinned(name: string, keyNode: Node, node: YAMLMap, kindNode: Node): LockedModel {
    const where = `models.${name}`;
    const kind = isScalar(kindNode) ? kindNode.value : undefined;
    if (typeof kind !== 'string' || !(PINNED_KINDS as string[]).includes(kind)) {
      this.fail(this.at(kindNode), `${where}.kind: expected one of ${PINNED_KINDS.join(', ')}`);
    }
    const pinnedKind = kind as (typeof PINNED_KINDS)[number];
    const fields = this.fields(node, where, PINNED_KEYS);
    const get = (k: string) => this.required(fields, k, where, keyNode);
    const spec = this.hash(get('spec'), `${where}.spec`);
    const pin = this.parsePin(get('source'), pinnedKind, `${where}.source`);
    const manifestField = get('manifest');
    const manifest = this.hash(manifestField, `${where}.manifest`);
    const sizeField = get('size');
    const size = this.size(sizeField, `${where}.size`);
    const { files, fileLines } = this.parseFiles(get('files'), where);
    const total = files.reduce((sum, f) => sum + f.size, 0);
    if (total !== size) this.fail(this.valueOffset(sizeField), `${where}.size: is ${size} but the files add up to ${total}`);
    const expected = pinnedKind === 'oci' ? String(pin.digest).slice('sha256:'.length) : contentKey(pinnedKind, pin, files);
    if (manifest !== expected) this.fail(this.valueOffset(manifestField), `${where}.manifest does not match its source and files (edited by hand?)`);
    const entry: LockedModel = { spec, kind: pinnedKind, ...describePin(pinnedKind, pin), manifest, size, files, pin };
    positions.set(entry, { line: this.lineCounter.linePos(this.at(keyNode) ?? 0).line, files: fileLines });
    return entry;
  }

  parsePin(field: { key: Node; value: Node | null }, kind: (typeof PINNED_KINDS)[number], where: string): LockedPin {
    const map = field.value;
    if (!isMap(map)) this.fail(this.valueOffset(field), `${where}: expected a mapping`);
    const pin: LockedPin = {};
    for (const pair of map.items) {
      const key = pair.key as Node | null;
      const name = isScalar(key) ? key.value : undefined;
      const value = isScalar(pair.value) ? pair.value.value : undefined;
      if (typeof name !== 'string') this.fail(this.at(key, map), `${where}: expected string keys`);
      const problem = checkPinValue(kind, name, value);
      if (problem) this.fail(this.at(pair.value as Node | null, key), `${where}.${name}: ${problem}`);
      pin[name] = value as string | number;
    }
    const missing = missingPinKeys(kind, pin);
    if (missing.length > 0) this.fail(this.at(map), `${where}: missing required key "${missing[0] as string}"`);
    return pin;
  }

  parseFiles(filesField: { key: Node; value: Node | null }, where: string): { files: LockedFile[]; fileLines: number[] } {
    if (!isSeq(filesField.value)) this.fail(this.valueOffset(filesField), `${where}.files: expected a list`);
    const seen = new Set<string>();
    const fileLines: number[] = [];
    const files = filesField.value.items.map((item, i) => {
      const fileWhere = `${where}.files[${i}]`;
      const itemNode = (item as Node | null) ?? null;
      if (!isMap(itemNode)) this.fail(this.at(itemNode, filesField.value), `${fileWhere}: expected a mapping { path, size, sha256 }`);
      fileLines.push(this.lineCounter.linePos(this.at(itemNode) ?? 0).line);
      const ff = this.fields(itemNode, fileWhere, FILE_KEYS);
      const pathField = this.required(ff, 'path', fileWhere, itemNode);
      const path = this.string(pathField, `${fileWhere}.path`);
      const problem = checkRelativePath(path);
      if (problem) this.fail(this.valueOffset(pathField), `${fileWhere}.path ${JSON.stringify(path)}: ${problem}`);
      const folded = path.toLowerCase();
      if (seen.has(folded)) this.fail(this.valueOffset(pathField), `${fileWhere}.path "${path}" appears twice`);
      seen.add(folded);
      const file: LockedFile = { path, size: this.size(this.required(ff, 'size', fileWhere, itemNode), `${fileWhere}.size`) };
      const shaField = ff.get('sha256');
      if (shaField) file.sha256 = this.hash(shaField, `${fileWhere}.sha256`);
      return file;
    });
    return { files, fileLines };
  }
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

// A plain YAML scalar that is certainly a string (not a number, boolean or null) and needs no quoting.
const PLAIN = /^[A-Za-z0-9_][A-Za-z0-9_./@+-]*$/;
const NOT_A_STRING = /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+|0o[0-7]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|true|True|TRUE|false|False|FALSE|null|Null|NULL|~)$/;
const plainString = (value: string | undefined): value is string => value !== undefined && PLAIN.test(value) && !NOT_A_STRING.test(value);
// Block values may also hold a URL: a colon not followed by a space is plain YAML there.
const BLOCK_PLAIN = /^[A-Za-z0-9_./][A-Za-z0-9_./@+:-]*[A-Za-z0-9_./@+-]$|^[A-Za-z0-9_]$/;
const blockString = (value: string | undefined): value is string => value !== undefined && BLOCK_PLAIN.test(value) && !NOT_A_STRING.test(value);
const plainSize = (value: string | undefined): number | undefined => {
  if (value === undefined || !/^(?:0|[1-9][0-9]{0,15})$/.test(value)) return undefined;
  const n = Number(value);
  return n <= MAX_SIZE ? n : undefined;
};
const FILE_LINE = /^ {6}- \{ path: ([^,{}]+), size: ([0-9]+)(?:, sha256: ([0-9a-f]{64}))? \}$/;

/** The lock exactly as serializeLockfile writes it, checked as strictly as the full parser; else undefined. */
export function readCanonical(text: string): Lockfile | undefined {
  const lf = text.includes('\r\n') ? text.replace(/\r\n/g, '\n') : text;
  return lf.startsWith(`#${HEADER}\n`) ? readCanonicalBody(lf.slice(HEADER.length + 2)) : undefined;
}

const HEADER_BYTES = Buffer.from(`#${HEADER}\n`);

/**
 * The same from the file's bytes. The header's dash is, as a rule, the lock's only non-ASCII
 * character: decoded apart from it, the rest is a one-byte string, not a UTF-16 one of twice the
 * size, and the parsed paths and hashes point into it (25 MB less for 100,000 files).
 */
function readCanonicalBytes(bytes: Buffer): Lockfile | undefined {
  const newline = bytes.indexOf(10);
  const header = bytes.subarray(0, newline > 0 && bytes[newline - 1] === 13 ? newline - 1 : newline);
  if (newline < 0 || !header.equals(HEADER_BYTES.subarray(0, -1))) return undefined;
  if (!isAscii(bytes.subarray(newline + 1))) return readCanonical(bytes.toString('utf8'));
  const body = bytes.toString('latin1', newline + 1);
  return readCanonicalBody(body.includes('\r\n') ? body.replace(/\r\n/g, '\n') : body);
}

/** The lock after its header line (line numbers count the header). */
function readCanonicalBody(body: string): Lockfile | undefined {
  const lines = body.split('\n');
  if (lines[0] !== '' || lines[1] !== 'lockfileVersion: 1' || lines[lines.length - 1] !== '') return undefined;
  const models = dictionary<LockedModel>();
  let i = 2;
  if (lines[i] === 'models: {}') i++;
  else if (lines[i++] !== 'models:') return undefined;
  while (i < lines.length - 1) {
    const entryLine = i + 2;
    const name = /^ {2}([^ :]+):$/.exec(lines[i++] ?? '')?.[1];
    if (!plainString(name) || !NAME_PATTERN.test(name) || Object.hasOwn(models, name)) return undefined;
    const values: string[] = [];
    for (const key of MODEL_KEYS.slice(0, -1)) {
      const line = lines[i++] ?? '';
      const prefix = `    ${key}: `;
      if (!line.startsWith(prefix)) return undefined;
      values.push(line.slice(prefix.length));
    }
    const [spec, model, version, resolved, registry, manifest, sizeText] = values;
    const size = plainSize(sizeText);
    if (!isSha256(spec) || !isSha256(manifest) || size === undefined) return undefined;
    if (![model, version, resolved, registry].every(blockString)) return undefined;
    const files: LockedFile[] = [];
    const filesLine = lines[i++];
    if (filesLine !== '    files:' && filesLine !== '    files: []') return undefined;
    const seen = new Set<string>();
    const fileLines: number[] = [];
    while (filesLine === '    files:' && lines[i]?.startsWith('      - ')) {
      fileLines.push(i + 2);
      const match = FILE_LINE.exec(lines[i++] as string);
      const path = match?.[1];
      const fileSize = plainSize(match?.[2]);
      if (!plainString(path) || fileSize === undefined || checkRelativePath(path) || seen.has(path.toLowerCase())) return undefined;
      seen.add(path.toLowerCase());
      files.push({ path, size: fileSize, ...(match?.[3] ? { sha256: match[3] } : {}) });
    }
    if (filesLine === '    files:' && files.length === 0) return undefined;
    const entry: LockedModel = { spec, model: model as string, version: version as string, resolved: resolved as string, registry: registry as string, manifest, size, files };
    if (files.reduce((sum, f) => sum + f.size, 0) !== size || spec !== specHash(entry)) return undefined;
    models[name] = entry;
    positions.set(entry, { line: entryLine, files: fileLines });
  }
  return { lockfileVersion: 1, models };
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

// --- write ---------------------------------------------------------------------------------------

// Code-unit order: the same bytes whatever the machine's locale.
function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The canonical text after the header line, written line by line as the YAML library would write
 * it, when every value is a plain scalar (the usual case); undefined otherwise. The library takes
 * ~150 ms per 1,000 files. Encoded in pieces of about 64 KiB: a string per line (or the whole
 * text as one UTF-16 string, for the header's dash) took over 40 MB for 100,000 files.
 */
function writeCanonicalBody(lock: Lockfile): Buffer[] | undefined {
  const names = Object.keys(lock.models).sort(byCodeUnit);
  const pieces: Buffer[] = [];
  let text = `\nlockfileVersion: 1\n${names.length === 0 ? 'models: {}' : 'models:'}\n`;
  for (const name of names) {
    const m = lock.models[name] as LockedModel;
    if (m.kind !== undefined && m.kind !== 'xprim') return undefined; // pinned kinds go through the YAML writer
    if (!plainString(name) || ![m.spec, m.manifest].every(plainString) || ![m.model, m.version, m.resolved, m.registry].every(blockString)) return undefined;
    text += `  ${name}:\n    spec: ${m.spec}\n    model: ${m.model}\n    version: ${m.version}\n    resolved: ${m.resolved}\n    registry: ${m.registry}\n    manifest: ${m.manifest}\n    size: ${m.size}\n`;
    text += m.files.length === 0 ? '    files: []\n' : '    files:\n';
    for (const f of m.files) {
      if (!plainString(f.path) || (f.sha256 !== undefined && !plainString(f.sha256))) return undefined;
      text += `      - { path: ${f.path}, size: ${f.size}${f.sha256 !== undefined ? `, sha256: ${f.sha256}` : ''} }\n`;
      if (text.length >= 65536) {
        pieces.push(Buffer.from(text));
        text = '';
      }
    }
  }
  pieces.push(Buffer.from(text));
  return pieces;
}

/** models.lock as written, in UTF-8. */
export function serializeLockBytes(lock: Lockfile): Buffer {
  const body = writeCanonicalBody(lock);
  return body ? Buffer.concat([HEADER_BYTES, ...body]) : Buffer.from(serializeWithYaml(lock));
}

export function serializeLockfile(lock: Lockfile): string {
  return serializeLockBytes(lock).toString('utf8');
}

// The digest of what writeLockfile last wrote for a lock: the project records it without a second serialization.
const written = new WeakMap<Lockfile, string>();

/** sha256 of models.lock as it is written for this lock. */
export function lockDigest(lock: Lockfile): string {
  return written.get(lock) ?? sha256(serializeLockBytes(lock));
}

/** The general writer: any string, quoted as YAML needs. Exported for the test that both writers agree. */
export function serializeWithYaml(lock: Lockfile): string {
  const models = dictionary<unknown>();
  for (const name of Object.keys(lock.models).sort(byCodeUnit)) {
    const m = lock.models[name] as LockedModel;
    const files = m.files.map((f) => ({ path: f.path, size: f.size, ...(f.sha256 !== undefined ? { sha256: f.sha256 } : {}) }));
    if (m.kind !== undefined && m.kind !== 'xprim') {
      const pin = m.pin ?? {};
      const source = Object.fromEntries(Object.keys(pin).sort(byCodeUnit).map((k) => [k, pin[k]]));
      models[name] = { kind: m.kind, spec: m.spec, source, manifest: m.manifest, size: m.size, files };
      continue;
    }
    models[name] = {
      spec: m.spec,
      model: m.model,
      version: m.version,
      resolved: m.resolved,
      registry: m.registry,
      manifest: m.manifest,
      size: m.size,
      files: m.files.map((f) => ({ path: f.path, size: f.size, ...(f.sha256 !== undefined ? { sha256: f.sha256 } : {}) })),
    };
  }
  const doc = new Document({ lockfileVersion: 1, models });
  doc.commentBefore = HEADER;
  const modelsNode = doc.get('models', true);
  if (isMap(modelsNode)) {
    for (const pair of modelsNode.items) {
      const files = isMap(pair.value) ? pair.value.get('files', true) : undefined;
      if (isSeq(files)) for (const item of files.items) if (isMap(item)) item.flow = true;
    }
  }
  // lineWidth 0: never fold long strings or break a flow map over lines.
  return doc.toString({ lineWidth: 0 });
}

/** Write atomically; false (and the file untouched) when the content would not change. */
export async function writeLockfile(file: string, lock: Lockfile): Promise<boolean> {
  const text = serializeLockBytes(lock);
  written.set(lock, sha256(text));
  // Unchanged: the bytes in place are the ones an earlier run checked (below) and wrote.
  if ((await readFile(file).catch(() => undefined))?.equals(text)) return false;
  try {
    parseLockfile(text, file);
  } catch (error) {
    const detail = error instanceof ModelsError ? error.message.replace(`${file}:`, 'line ') : String(error);
    throw new ModelsError('E_INTERNAL', `refusing to write an invalid lock to ${file}: ${detail}`, {
      hint: 'this is a bug in xprim-models: please report it',
      cause: error,
    });
  }
  await writeFileAtomic(file, text);
  return true;
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
