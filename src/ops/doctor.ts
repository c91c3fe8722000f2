/**
 * `models doctor`: a readiness report. Each check says ok, warn or fail, and every problem carries
 * one hint. Nothing is changed; the only network requests are one models.json per registry.
 *
 * The checks, in the order they are reported (src/ops/doctor/):
 *   checkProject     models.yaml valid; models.lock present, in sync, agreeing with the install
 *   checkFolders     the install root and the cache writable
 *   checkDiskSpace   room for what is still to be installed
 *   checkRegistries  each registry and mirror answers with a valid models.json
 *   modelChecks      each model installed, as locked
 */
import { resolve } from 'node:path';
import { type ModelStatus, installStatuses } from './catalog-info.js';
import type { Project } from '../project/project.js';
import { Store, defaultCacheDir } from '../store/store.js';
import { VERSION } from '../util/version.js';
import { checkDiskSpace, checkFolders, checkProject, modelChecks } from './doctor/local.js';
import { checkRegistries } from './doctor/registries.js';

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

export async function doctor(project?: Project | string, options: DoctorOptions = {}): Promise<DoctorReport> {
  const env = options.env ?? process.env;
  const configPath = typeof project === 'object' ? project.config.file : resolve(project ?? 'models.yaml');
  const store = new Store(options.cacheDir ?? defaultCacheDir(env));

  const { project: p, checks } = await checkProject(project, configPath, options.root, store);
  const root = p ? resolve(options.root ?? p.config.root) : options.root ? resolve(options.root) : undefined;
  checks.push(...(await checkFolders(root, store)));
  // A stat per file; the disk check needs the sizes of what is missing.
  const statuses = p ? (await installStatuses(p, { root })).models : [];
  checks.push(...(await checkDiskSpace(store.root, root, statuses)));
  if (p) checks.push(...(await checkRegistries(p, statuses, { cacheDir: store.root, env, timeoutMs: options.timeoutMs ?? 5000, signal: options.signal })));
  checks.push(...modelChecks(statuses));

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
