/**
 * Doctor's checks that need no network: models.yaml and models.lock, the install root and the
 * cache (writable), the free disk space an install needs, and each model's install status.
 */
import { constants } from 'node:fs';
import { access, mkdir, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { checkLockEntry } from '../../install/lock-contract.js';
import { readState } from '../../install/state.js';
import { type LockedModel, lockStatus } from '../../project/lockfile.js';
import { type Project, loadProject } from '../../project/project.js';
import { parseManifest } from '../../registry/manifest.js';
import type { Store } from '../../store/store.js';
import { type ModelsError, isModelsError } from '../../util/errors.js';
import { formatBytes } from '../../util/units.js';
import { GENERATOR } from '../../util/version.js';
import type { ModelStatus } from '../catalog-info.js';
import type { DoctorCheck } from '../doctor.js';

/** The nearest folder that exists at or above `path` (statfs needs one). */
async function existingAncestor(path: string): Promise<string> {
  let current = resolve(path);
  for (;;) {
    if (await stat(current).then(() => true, () => false)) return current;
    const parent = dirname(current);
    if (parent === current) return current;
    current = parent;
  }
}

async function freeBytes(path: string): Promise<number | undefined> {
  try {
    const info = await statfs(await existingAncestor(path));
    return info.bavail * info.bsize;
  } catch {
    return undefined;
  }
}

/** Undefined when a file can be created in `dir` (created if missing); else why not. */
async function checkWritable(dir: string): Promise<string | undefined> {
  try {
    await mkdir(dir, { recursive: true });
    const probe = join(dir, `.doctor-${process.pid}-${Date.now()}`);
    await writeFile(probe, '');
    await rm(probe, { force: true });
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  }
}

/** The project, loaded (else the check that says why it cannot be), and its lock checked against it. */
export async function checkProject(project: Project | string | undefined, configPath: string, root: string | undefined, store: Store): Promise<{ project?: Project; checks: DoctorCheck[] }> {
  let p: Project;
  try {
    p = typeof project === 'object' ? project : await loadProject(configPath);
  } catch (error) {
    const lockProblem = isModelsError(error) && error.code === 'E_LOCKFILE';
    const check: DoctorCheck = {
      area: lockProblem ? 'lock' : 'config',
      subject: isModelsError(error) && error.file ? error.file : configPath,
      status: 'fail',
      message: (error as Error).message,
      hint: isModelsError(error) && error.hint ? error.hint : 'fix the file and run `models doctor` again',
    };
    return { checks: [check] };
  }
  const models = p.config.models.length;
  const config: DoctorCheck = { area: 'config', subject: p.config.file, status: 'ok', message: `valid, ${models} model${models === 1 ? '' : 's'}` };
  return { project: p, checks: [config, await checkLock(p, resolve(root ?? p.config.root), store)] };
}

async function checkLock(p: Project, root: string, store: Store): Promise<DoctorCheck> {
  const subject = p.lockPath;
  if (!p.lock) return { area: 'lock', subject, status: 'fail', message: 'missing', hint: 'run `models lock` and commit models.lock' };
  const status = lockStatus(p.config, p.lock);
  if (!status.inSync) {
    const parts = [
      status.missing.length ? `not locked: ${status.missing.join(', ')}` : '',
      status.stale.length ? `changed since locked: ${status.stale.join(', ')}` : '',
      status.extra.length ? `no longer in models.yaml: ${status.extra.join(', ')}` : '',
    ].filter(Boolean);
    return { area: 'lock', subject, status: 'fail', message: `out of sync with models.yaml (${parts.join('; ')})`, hint: 'run `models lock` and commit models.lock (`install --frozen` exits 8 until then)' };
  }
  const contract = await lockContractProblem(p, root, store);
  if (contract) return { area: 'lock', subject, status: 'fail', message: contract.message, ...(contract.hint ? { hint: contract.hint } : {}) };
  return { area: 'lock', subject, status: 'ok', message: 'in sync with models.yaml' };
}

/** The first lock entry that contradicts its install record or its stored manifest (no network: doctor only reads). */
async function lockContractProblem(project: Project, root: string, store: Store): Promise<ModelsError | undefined> {
  const state = await readState(root, GENERATOR);
  for (const entry of project.config.models) {
    const locked = project.lock?.models[entry.name] as LockedModel;
    const fromStore = async () => {
      const bytes = await store.readManifest(locked.manifest).catch(() => undefined);
      return bytes ? parseManifest(bytes, locked.manifest) : undefined;
    };
    try {
      await checkLockEntry(project.lockPath, entry.name, locked, state.models[entry.name], () => fromStore().catch(() => undefined));
    } catch (error) {
      if (isModelsError(error)) return error;
      throw error;
    }
  }
  return undefined;
}

/** The install root (may not exist yet: then its nearest existing parent must be writable) and the cache. */
export async function checkFolders(root: string | undefined, store: Store): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  if (root) {
    const exists = await stat(root).then((i) => i.isDirectory(), () => false);
    const target = exists ? root : await existingAncestor(root);
    const writable = await access(target, constants.W_OK).then(() => true, () => false);
    checks.push(
      writable
        ? { area: 'root', subject: root, status: 'ok', message: exists ? 'writable' : 'does not exist yet; will be created' }
        : { area: 'root', subject: root, status: 'fail', message: `not writable (${target})`, hint: 'fix its permissions, or install elsewhere with --root' },
    );
  }
  const cacheProblem = await checkWritable(store.dir);
  checks.push(
    cacheProblem
      ? { area: 'cache', subject: store.root, status: 'fail', message: `not writable (${cacheProblem})`, hint: 'point MODELS_CACHE_DIR (or --cache-dir) at a writable folder' }
      : { area: 'cache', subject: store.root, status: 'ok', message: 'writable' },
  );
  return checks;
}

/** Free space in the cache and the install root against what installing the missing models needs (plus 16 MiB). */
export async function checkDiskSpace(cacheRoot: string, root: string | undefined, statuses: ModelStatus[]): Promise<DoctorCheck[]> {
  const needed = statuses.filter((m) => m.status === 'missing' || m.status === 'stale' || m.status === 'corrupt').reduce((s, m) => s + (m.size ?? 0), 0);
  const checks: DoctorCheck[] = [];
  for (const [what, dir] of [['cache', cacheRoot], ...(root ? [['install root', root]] : [])] as [string, string][]) {
    const free = await freeBytes(dir);
    if (free === undefined) continue;
    const enough = free >= needed + 16 * 1024 * 1024;
    checks.push({
      area: 'disk',
      subject: dir,
      status: enough ? 'ok' : 'fail',
      message: `${formatBytes(free)} free in the ${what}${needed > 0 ? `, ${formatBytes(needed)} needed to install` : ''}`,
      ...(enough ? {} : { hint: 'free some space (`models cache prune`), or use --cache-dir / --root on a bigger disk' }),
    });
  }
  return checks;
}

const MODEL_HINTS: Record<ModelStatus['status'], string | undefined> = {
  installed: undefined,
  'other-platform': undefined,
  missing: 'run `models install`',
  stale: 'the installed version is not the locked one: run `models install`',
  corrupt: 'run `models verify` to see which files differ, then `models install --verify` to repair',
  unlocked: 'run `models lock` (or `models install`) and commit models.lock',
};

export function modelChecks(statuses: ModelStatus[]): DoctorCheck[] {
  return statuses.map((m): DoctorCheck => {
    const hint = MODEL_HINTS[m.status];
    const version = m.resolved && m.resolved !== m.version ? `${m.version} → ${m.resolved}` : m.version;
    return {
      area: 'model',
      subject: m.name,
      status: hint ? 'fail' : 'ok',
      message: `${m.model}@${version}: ${m.status}${m.detail && m.status !== 'installed' ? ` (${m.detail})` : ''}`,
      ...(hint ? { hint } : {}),
    };
  });
}
