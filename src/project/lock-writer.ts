/**
 * Writing models.lock: byte-for-byte deterministic, so that it diffs well and an unchanged resolve
 * rewrites nothing. The usual lock (plain scalars only) is written line by line; anything else
 * through the YAML library. What is written is parsed back first: an invalid lock is never written.
 */
import { readFile } from 'node:fs/promises';
import { Document, isMap, isSeq } from 'yaml';
import { dictionary } from '../util/dictionary.js';
import { ModelsError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fsutil.js';
import { sha256 } from '../util/hash.js';
import { HEADER, HEADER_BYTES, blockString, byCodeUnit, plainString } from './lock-format.js';
import { type LockedModel, type Lockfile, parseLockfile } from './lockfile.js';

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
