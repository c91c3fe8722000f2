/**
 * `models doctor`: a readiness report. Each check says ok, warn or fail, and every problem carries
 * one hint. Nothing is changed; the only network requests are one models.json per registry.
 */
import { constants } from 'node:fs';
import { access, mkdir, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { type ModelStatus, installStatuses } from './catalog-info.js';
import { type ModelsError, isModelsError } from '../util/errors.js';
import { checkLockEntry } from '../install/lock-contract.js';
import { type LockedModel, lockStatus } from '../project/lockfile.js';
import { parseManifest } from '../registry/manifest.js';
import { readState } from '../install/state.js';
import { GENERATOR, VERSION } from '../util/version.js';
import { describeNetworkError } from '../net/http.js';
import { type Project, loadProject } from '../project/project.js';
import { MAX_INDEX_BYTES, parseCatalog } from '../registry/catalog.js';
import { createSource } from '../registry/source.js';
import { Session, envMirrors } from '../project/session.js';
import { Store, defaultCacheDir } from '../store/store.js';
import { formatBytes } from '../util/units.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';
export type CheckArea = 'config' | 'lock' | 'root' | 'cache' | 'disk' | 'registry' | 'model';

export interface DoctorCheck {
  area: CheckArea;
  /** What was checked: a path, a registry location, a model name. */
  subject: string;
  status: CheckStatus;
  message: string;
  hint?: string;
  latencyMs?: number;
}

export interface DoctorReport {
  ready: boolean;
  version: string;
  config: string;
  root?: string;
  cache: string;
  checks: DoctorCheck[];
  models: ModelStatus[];
  problems: number;
  warnings: number;
}

export interface DoctorOptions {
  cacheDir?: string | undefined;
  root?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** Per registry (default 5 s). */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

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

async function readRegistry(session: Session, location: string, timeoutMs: number, signal?: AbortSignal): Promise<{ latencyMs: number; models: number }> {
  const source = createSource(location, session.http);
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const started = performance.now();
  let opened;
  try {
    opened = await source.open('models.json', { signal: combined });
  } catch (error) {
    if (timeout.aborted) throw new Error(`no answer within ${Math.round(timeoutMs / 1000)}s`);
    throw error;
  }
  if (!opened) throw new Error('models.json not found (404): not an XPRIM registry, or a wrong URL');
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const part of opened.body) {
      total += part.byteLength;
      if (total > MAX_INDEX_BYTES) throw new Error('models.json is too large');
      parts.push(Buffer.from(part));
    }
  } catch (error) {
    opened.destroy();
    if (timeout.aborted) throw new Error(`no answer within ${Math.round(timeoutMs / 1000)}s`);
    throw error;
  }
  const latencyMs = Math.round(performance.now() - started);
  const catalog = parseCatalog(Buffer.concat(parts), opened.url);
  const models = Object.values(catalog).reduce((n, group) => n + Object.keys(group).length, 0);
  return { latencyMs, models };
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

const MODEL_HINTS: Record<ModelStatus['status'], string | undefined> = {
  installed: undefined,
  'other-platform': undefined,
  missing: 'run `models install`',
  stale: 'the installed version is not the locked one: run `models install`',
  corrupt: 'run `models verify` to see which files differ, then `models install --verify` to repair',
  unlocked: 'run `models lock` (or `models install`) and commit models.lock',
};

export async function doctor(project?: Project | string, options: DoctorOptions = {}): Promise<DoctorReport> {
  const env = options.env ?? process.env;
  const checks: DoctorCheck[] = [];
  const add = (check: DoctorCheck) => checks.push(check);
  const configPath = typeof project === 'object' ? project.config.file : resolve(project ?? 'models.yaml');

  // Config and lock.
  let p: Project | undefined;
  try {
    p = typeof project === 'object' ? project : await loadProject(configPath);
    add({ area: 'config', subject: p.config.file, status: 'ok', message: `valid, ${p.config.models.length} model${p.config.models.length === 1 ? '' : 's'}` });
  } catch (error) {
    const lockProblem = isModelsError(error) && error.code === 'E_LOCKFILE';
    add({
      area: lockProblem ? 'lock' : 'config',
      subject: isModelsError(error) && error.file ? error.file : configPath,
      status: 'fail',
      message: (error as Error).message,
      hint: isModelsError(error) && error.hint ? error.hint : 'fix the file and run `models doctor` again',
    });
  }
  if (p) {
    const status = lockStatus(p.config, p.lock);
    if (!p.lock) {
      add({ area: 'lock', subject: p.lockPath, status: 'fail', message: 'missing', hint: 'run `models lock` and commit models.lock' });
    } else if (!status.inSync) {
      const parts = [
        status.missing.length ? `not locked: ${status.missing.join(', ')}` : '',
        status.stale.length ? `changed since locked: ${status.stale.join(', ')}` : '',
        status.extra.length ? `no longer in models.yaml: ${status.extra.join(', ')}` : '',
      ].filter(Boolean);
      add({ area: 'lock', subject: p.lockPath, status: 'fail', message: `out of sync with models.yaml (${parts.join('; ')})`, hint: 'run `models lock` and commit models.lock (`install --frozen` exits 8 until then)' });
    } else {
      const contract = await lockContractProblem(p, resolve(options.root ?? p.config.root), new Store(options.cacheDir ?? defaultCacheDir(env)));
      add(contract ? { area: 'lock', subject: p.lockPath, status: 'fail', message: contract.message, ...(contract.hint ? { hint: contract.hint } : {}) } : { area: 'lock', subject: p.lockPath, status: 'ok', message: 'in sync with models.yaml' });
    }
  }

  // Folders.
  const root = p ? resolve(options.root ?? p.config.root) : options.root ? resolve(options.root) : undefined;
  if (root) {
    const exists = await stat(root).then((i) => i.isDirectory(), () => false);
    const target = exists ? root : await existingAncestor(root);
    const writable = await access(target, constants.W_OK).then(() => true, () => false);
    add(
      writable
        ? { area: 'root', subject: root, status: 'ok', message: exists ? 'writable' : 'does not exist yet; will be created' }
        : { area: 'root', subject: root, status: 'fail', message: `not writable (${target})`, hint: 'fix its permissions, or install elsewhere with --root' },
    );
  }
  const store = new Store(options.cacheDir ?? defaultCacheDir(env));
  const cacheProblem = await checkWritable(store.dir);
  add(
    cacheProblem
      ? { area: 'cache', subject: store.root, status: 'fail', message: `not writable (${cacheProblem})`, hint: 'point MODELS_CACHE_DIR (or --cache-dir) at a writable folder' }
      : { area: 'cache', subject: store.root, status: 'ok', message: 'writable' },
  );

  // Models (a stat per file), then the disk space their install needs.
  const statuses = p ? (await installStatuses(p, { root })).models : [];
  const needed = statuses.filter((m) => m.status === 'missing' || m.status === 'stale' || m.status === 'corrupt').reduce((s, m) => s + (m.size ?? 0), 0);
  for (const [what, dir] of [['cache', store.root], ...(root ? [['install root', root]] : [])] as [string, string][]) {
    const free = await freeBytes(dir);
    if (free === undefined) continue;
    const enough = free >= needed + 16 * 1024 * 1024;
    add({
      area: 'disk',
      subject: dir,
      status: enough ? 'ok' : 'fail',
      message: `${formatBytes(free)} free in the ${what}${needed > 0 ? `, ${formatBytes(needed)} needed to install` : ''}`,
      ...(enough ? {} : { hint: 'free some space (`models cache prune`), or use --cache-dir / --root on a bigger disk' }),
    });
  }

  // Registries: one models.json each, with its latency.
  if (p) {
    const session = new Session(p.config, { cacheDir: store.root, env, retry: { attempts: 1 } });
    try {
      const mirrors = new Set([...envMirrors(env, p.config.dir), ...p.config.mirrors]);
      const locations = [...new Set([...envMirrors(env, p.config.dir), ...p.config.models.filter((m) => m.kind === 'xprim').map((m) => m.registryUrl), ...p.config.mirrors])];
      const results = await Promise.all(
        locations.map(async (location) => {
          try {
            return { location, ...(await readRegistry(session, location, options.timeoutMs ?? 5000, options.signal)) };
          } catch (error) {
            return { location, error: isModelsError(error) ? error.message : describeNetworkError(error) };
          }
        }),
      );
      for (const r of results) {
        const subject = createSource(r.location, session.http).location;
        const kind = p.config.models.some((m) => m.registryUrl === r.location) || !mirrors.has(r.location) ? 'registry' : 'mirror';
        if ('error' in r) {
          // Unreachable matters when something still has to be fetched from it.
          const users = statuses.filter((m) => p.config.models.find((e) => e.name === m.name)?.registryUrl === r.location);
          const needsIt = kind === 'registry' && users.some((m) => m.status !== 'installed' && m.status !== 'other-platform');
          add({
            area: 'registry',
            subject,
            status: needsIt ? 'fail' : 'warn',
            message: `${kind} unreachable: ${r.error}`,
            hint: /^https?:/.test(r.location)
              ? 'check the network, the URL and proxy settings (HTTPS_PROXY), or set MODELS_MIRRORS to a reachable mirror'
              : 'check that the folder exists and holds models.json',
          });
        } else {
          add({ area: 'registry', subject, status: 'ok', message: `${kind} reachable in ${r.latencyMs} ms, ${r.models} model${r.models === 1 ? '' : 's'}`, latencyMs: r.latencyMs });
        }
      }
    } finally {
      await session.close();
    }
  }

  for (const m of statuses) {
    const hint = MODEL_HINTS[m.status];
    const version = m.resolved && m.resolved !== m.version ? `${m.version} → ${m.resolved}` : m.version;
    add({
      area: 'model',
      subject: m.name,
      status: hint ? 'fail' : 'ok',
      message: `${m.model}@${version}: ${m.status}${m.detail && m.status !== 'installed' ? ` (${m.detail})` : ''}`,
      ...(hint ? { hint } : {}),
    });
  }

  const problems = checks.filter((c) => c.status === 'fail').length;
  return {
    ready: problems === 0,
    version: VERSION,
    config: configPath,
    ...(root ? { root } : {}),
    cache: store.root,
    checks,
    models: statuses,
    problems,
    warnings: checks.filter((c) => c.status === 'warn').length,
  };
}

/** The plain-text report: one line per check, a hint under each problem; copyable into an issue. */
export function formatDoctor(report: DoctorReport): string {
  const label: Record<CheckStatus, string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL' };
  const areaWidth = Math.max(...report.checks.map((c) => c.area.length));
  const lines = [`models doctor (xprim-models ${report.version}, node ${process.version}, ${process.platform}-${process.arch})`];
  for (const c of report.checks) {
    lines.push(`${label[c.status].padEnd(4)}  ${c.area.padEnd(areaWidth)}  ${c.subject}: ${c.message}`);
    if (c.hint && c.status !== 'ok') lines.push(`${' '.repeat(6 + areaWidth + 2)}hint: ${c.hint}`);
  }
  lines.push('');
  const warnings = report.warnings ? `, ${report.warnings} warning${report.warnings === 1 ? '' : 's'}` : '';
  lines.push(report.ready ? `Ready${warnings}.` : `Not ready: ${report.problems} problem${report.problems === 1 ? '' : 's'}${warnings}.`);
  return `${lines.join('\n')}\n`;
}
