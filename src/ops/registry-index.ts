/**
 * The models.json of a registry folder this tool writes (`models publish`, `models mirror`): read
 * strictly (a malformed index is refused and left as it is, never overwritten), written with sorted
 * keys (the same index always gives the same bytes) and replaced only under the registry lock.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lockTimeoutFrom } from '../project/settings.js';
import { CATALOG_FILE, type Catalog, checkCatalogShape } from '../registry/catalog.js';
import { acquireLock } from '../store/locks.js';
import { ModelsError, storageError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fsutil.js';
import { compareUtf8 } from '../util/utf8-order.js';

/** A writer waits this long for another writer of the same registry (MODELS_LOCK_TIMEOUT overrides). */
const DEFAULT_LOCK_TIMEOUT_MS = 60_000;

/** The index at `path`; an empty one when the file does not exist yet. */
export async function readIndex(path: string): Promise<Catalog> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw storageError(error, 'read', path);
  }
  const malformed = (problem: string): never => {
    throw new ModelsError('E_INDEX', `registry index ${path} is malformed: ${problem}`, {
      hint: 'fix or restore models.json before publishing (it was left as is)',
      file: path,
    });
  };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    // A local file someone edited: the parser's position says where to look.
    malformed(`not JSON (${(error as Error).message})`);
  }
  // The same shape rules as every client's reader: never extend an index clients would refuse.
  checkCatalogShape(data, malformed);
  return data;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A copy with every object's keys in UTF-8 byte order (arrays keep their order). */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort(compareUtf8)) out[key] = sortKeys(value[key]);
  return out;
}

export function serializeIndex(index: Catalog): string {
  return `${JSON.stringify(sortKeys(index), null, 1)}\n`;
}

/**
 * Under the registry lock: read the index, let `edit` change it in place (it may throw to refuse),
 * and replace the file if the bytes changed. True when it was written. The lock is checked again
 * right before the rename, so a writer that lost it (it stalled and another took over) writes
 * nothing rather than undo the other's change.
 */
export async function updateIndex(registryDir: string, edit: (index: Catalog) => void, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const indexPath = join(registryDir, CATALOG_FILE);
  const lock = await acquireLock(join(registryDir, `.${CATALOG_FILE}`), `the registry ${registryDir}`, lockTimeoutFrom(env, DEFAULT_LOCK_TIMEOUT_MS));
  try {
    const index = await readIndex(indexPath);
    const before = serializeIndex(index);
    edit(index);
    const after = serializeIndex(index);
    if (after === before) return false;
    lock.assertHeld();
    await writeFileAtomic(indexPath, after);
    return true;
  } finally {
    await lock();
  }
}
