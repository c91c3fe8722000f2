/**
 * The full models.lock reader: any YAML layout, checked strictly, every problem an E_LOCKFILE error
 * naming file:line:col. The canonical layout is read faster by lock-canonical-reader.ts.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type YAMLMap } from 'yaml';
import { dictionary } from '../util/dictionary.js';
import { ModelsError } from '../util/errors.js';
import { isSha256 } from '../util/hash.js';
import { checkRelativePath } from '../registry/manifest.js';
import { NAME_PATTERN } from './config.js';
import { FILE_KEYS, LOCK_HINT, MAX_SIZE, MODEL_KEYS, PINNED_KEYS, recordPosition, specHash } from './lock-format.js';
import type { LockedFile, LockedModel, Lockfile } from './lockfile.js';
import { type LockedPin, PINNED_KINDS, checkPinValue, contentKey, describePin, missingPinKeys } from './pins.js';

export class LockReader {
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
    recordPosition(entry, { line: this.lineCounter.linePos(this.at(keyNode) ?? 0).line, files: fileLines });
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
    recordPosition(entry, { line: this.lineCounter.linePos(this.at(keyNode) ?? 0).line, files: fileLines });
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
