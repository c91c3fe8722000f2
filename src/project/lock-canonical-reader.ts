/**
 * The fast models.lock reader: the one layout serializeLockfile writes, read line by line in linear
 * time and small memory, checked as strictly as the full parser. Anything else: undefined, and the
 * caller falls back to the full parser (which names the line and column of a problem).
 */
import { isAscii } from 'node:buffer';
import { dictionary } from '../util/dictionary.js';
import { isSha256 } from '../util/hash.js';
import { checkRelativePath } from '../registry/manifest.js';
import { NAME_PATTERN } from './config.js';
import { HEADER, HEADER_BYTES, MODEL_KEYS, blockString, plainSize, plainString, recordPosition, specHash } from './lock-format.js';
import type { LockedFile, LockedModel, Lockfile } from './lockfile.js';

const FILE_LINE = /^ {6}- \{ path: ([^,{}]+), size: ([0-9]+)(?:, sha256: ([0-9a-f]{64}))? \}$/;

/** The lock exactly as serializeLockfile writes it, checked as strictly as the full parser; else undefined. */
export function readCanonical(text: string): Lockfile | undefined {
  const lf = text.includes('\r\n') ? text.replace(/\r\n/g, '\n') : text;
  return lf.startsWith(`#${HEADER}\n`) ? readCanonicalBody(lf.slice(HEADER.length + 2)) : undefined;
}

/**
 * The same from the file's bytes. The header's dash is, as a rule, the lock's only non-ASCII
 * character: decoded apart from it, the rest is a one-byte string, not a UTF-16 one of twice the
 * size, and the parsed paths and hashes point into it (25 MB less for 100,000 files).
 */
export function readCanonicalBytes(bytes: Buffer): Lockfile | undefined {
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
    recordPosition(entry, { line: entryLine, files: fileLines });
  }
  return { lockfileVersion: 1, models };
}
