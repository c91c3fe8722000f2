/** Checks made before an install writes anything: where the root is, its free space, the link mode. */
import { mkdir, statfs } from 'node:fs/promises';
import { isAbsolute, relative } from 'node:path';
import type { Project } from '../project/project.js';
import type { LinkMode, Store } from '../store/store.js';
import { ModelsError } from '../util/errors.js';
import { formatBytes } from '../util/units.js';

/**
 * `--root` may not be the project folder or one of its parents. Returns true when the root lies
 * outside the project: then it must be empty or ours (checked before anything is written).
 */
export function checkRootPlacement(project: Project, root: string): boolean {
  const fromRoot = relative(root, project.config.dir);
  if (fromRoot === '' || (!fromRoot.startsWith('..') && !isAbsolute(fromRoot))) {
    throw new ModelsError('E_USAGE', `install root ${root} is the project folder or one of its parents: installing there would replace its files`, {
      hint: 'use a folder of its own, e.g. --root models',
    });
  }
  const fromProject = relative(project.config.dir, root);
  return fromProject.startsWith('..') || isAbsolute(fromProject);
}

export async function checkFreeSpace(store: Store, root: string, neededBytes: number): Promise<void> {
  if (neededBytes === 0) return;
  for (const [what, dir] of [
    ['cache', store.dir],
    ['install root', root],
  ] as const) {
    const info = await statfs(dir).catch(() => undefined);
    if (!info) continue;
    const free = info.bavail * info.bsize;
    // Small margin for metadata; hardlinks mean the root needs no second copy on the same disk.
    if (free < neededBytes + 16 * 1024 * 1024) {
      throw new ModelsError('E_NO_SPACE', `not enough free space in the ${what} ${dir}: ${formatBytes(free)} free, ${formatBytes(neededBytes)} needed`, {
        hint: 'free some space (`models cache prune`), or use --cache-dir / --root on a bigger disk',
      });
    }
  }
}

export async function mkdirRoot(root: string): Promise<void> {
  await mkdir(root, { recursive: true }).catch((error: unknown) => {
    throw new ModelsError('E_STORAGE', `cannot create the install root ${root}: ${(error as Error).message}`, { hint: 'check permissions, or pass --root' });
  });
}

export function linkModeFrom(env: NodeJS.ProcessEnv): LinkMode {
  const mode = env.MODELS_LINK_MODE ?? 'auto';
  if (mode === 'auto' || mode === 'hardlink' || mode === 'reflink' || mode === 'copy') return mode;
  throw new ModelsError('E_USAGE', `MODELS_LINK_MODE=${mode}: expected auto, hardlink, reflink or copy`);
}
