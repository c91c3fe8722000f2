/** A project: its models.yaml, and the models.lock beside it. */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type ProjectConfig, loadConfig, parseConfig } from './config.js';
import { ModelsError } from '../util/errors.js';
import { sha256 } from '../util/hash.js';
import { type Lockfile, checkLockSize, parseLockfile } from './lockfile.js';
import { lockDigest } from './lock-writer.js';

export interface Project {
  config: ProjectConfig;
  lockPath: string;
  /** Parsed on first use: a repeat install that finds everything in place never needs it. */
  lock: Lockfile | undefined;
  /** sha256 of models.yaml and models.lock as they are now (lock: undefined when there is none). */
  digests: { config: string; lock: string | undefined };
}

export const LOCKFILE_NAME = 'models.lock';

async function readLockBytes(path: string): Promise<Buffer | undefined> {
  try {
    checkLockSize((await stat(path)).size, path);
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (error instanceof ModelsError) throw error;
    throw new ModelsError('E_LOCKFILE', `${path}: cannot read: ${(error as Error).message}`, { hint: 'check its permissions', file: path, cause: error });
  }
}

export async function loadProject(configPath = 'models.yaml'): Promise<Project> {
  const file = resolve(configPath);
  const configText = await readFile(file, 'utf8').catch(() => undefined);
  // loadConfig owns the messages for a missing or unreadable models.yaml.
  const config = configText === undefined ? await loadConfig(file) : parseConfig(configText, file);
  const lockPath = join(config.dir, LOCKFILE_NAME);
  // Bytes, not text: parsed from them (see parseLockfile), then let go.
  let lockBytes = await readLockBytes(lockPath);
  const digests = { config: sha256(configText ?? ''), lock: lockBytes === undefined ? undefined : sha256(lockBytes) };
  let parsed: Lockfile | undefined | null = null;
  return {
    config,
    lockPath,
    digests,
    get lock(): Lockfile | undefined {
      if (parsed === null) {
        parsed = lockBytes === undefined ? undefined : parseLockfile(lockBytes, lockPath);
        lockBytes = undefined;
      }
      return parsed;
    },
    set lock(value: Lockfile | undefined) {
      parsed = value;
      lockBytes = undefined;
      digests.lock = value === undefined ? undefined : lockDigest(value);
    },
  };
}
