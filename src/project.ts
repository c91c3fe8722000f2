/** A project: its models.yaml, and the models.lock beside it. */
import { join, resolve } from 'node:path';
import { type ProjectConfig, loadConfig } from './config.js';
import { type Lockfile, readLockfile } from './lockfile.js';

export interface Project {
  config: ProjectConfig;
  lockPath: string;
  lock: Lockfile | undefined;
}

export const LOCKFILE_NAME = 'models.lock';

export async function loadProject(configPath = 'models.yaml'): Promise<Project> {
  const config = await loadConfig(resolve(configPath));
  const lockPath = join(config.dir, LOCKFILE_NAME);
  return { config, lockPath, lock: await readLockfile(lockPath) };
}
