/** Which locked entries a run installs, and where each one goes. */
import { relative, resolve, sep } from 'node:path';
import type { ModelTarget } from './assemble.js';
import { type ModelEntry, matchesPlatform, parsePlatform } from '../project/config.js';
import { type LockedModel, lockStatus } from '../project/lockfile.js';
import type { Project } from '../project/project.js';
import { ModelsError } from '../util/errors.js';

/** Pick the entries this run installs: --only (names or tags) and `when:` for the target platform. */
export function selectEntries(entries: ModelEntry[], only: string[] | undefined, platform: string | undefined, flag = '--only '): ModelEntry[] {
  const target = platform ? parsePlatform(platform) : { os: process.platform, arch: process.arch };
  if (only && only.length > 0) {
    const known = new Set(entries.flatMap((e) => [e.name, ...e.tags]));
    const unknown = only.filter((o) => !known.has(o));
    if (unknown.length > 0) {
      throw new ModelsError('E_USAGE', `${flag}${unknown.join(', ')}: no model or tag of that name`, { hint: `models: ${entries.map((e) => e.name).join(', ')}` });
    }
  }
  return entries.filter((e) => matchesPlatform(e, target) && (!only || only.length === 0 || only.includes(e.name) || e.tags.some((t) => only.includes(t))));
}

export function frozenCheck(project: Project): void {
  const status = lockStatus(project.config, project.lock);
  if (!project.lock) {
    throw new ModelsError('E_FROZEN', `--frozen: ${project.lockPath} is missing`, { hint: 'run `models lock` and commit models.lock' });
  }
  if (!status.inSync) {
    const parts = [
      status.missing.length ? `not locked: ${status.missing.join(', ')}` : '',
      status.stale.length ? `changed since locked: ${status.stale.join(', ')}` : '',
      status.extra.length ? `locked but no longer in models.yaml: ${status.extra.join(', ')}` : '',
    ].filter(Boolean);
    // Point at the first drifted entry (editors, Action annotations); removed entries have no line.
    const first = project.config.models.find((m) => status.missing.includes(m.name) || status.stale.includes(m.name));
    throw new ModelsError('E_FROZEN', `--frozen: ${project.lockPath} is out of sync with ${project.config.file} (${parts.join('; ')})`, {
      hint: 'run `models lock` and commit models.lock',
      file: project.config.file,
      ...(first ? { line: first.line } : {}),
    });
  }
}

export function targetFor(project: Project, root: string, entry: ModelEntry, locked: LockedModel): ModelTarget {
  const dest = resolve(root, entry.path);
  const rel = relative(root, dest);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..') {
    throw new ModelsError('E_CONFIG', `${entry.name}: path "${entry.path}" leaves the install root ${root}`, { file: project.config.file, line: entry.line });
  }
  return { name: entry.name, kind: entry.kind, model: locked.model, version: locked.version, resolved: locked.resolved, registry: locked.registry, manifest: locked.manifest, path: entry.path, tags: entry.tags, dest };
}

/** Every folder this run may touch: the configured ones and the recorded ones (leftovers can sit beside either). */
export function destinations(project: Project, root: string, recorded: Iterable<{ path: string }>): string[] {
  return [...project.config.models.map((m) => resolve(root, m.path)), ...[...recorded].map((m) => resolve(root, m.path))];
}

/** Recorded models no longer in models.yaml; --only never removes anything. */
export function extraneousModels(project: Project, recorded: string[], only: string[] | undefined): string[] {
  if (only?.length) return [];
  const wanted = new Set(project.config.models.map((m) => m.name));
  return recorded.filter((name) => !wanted.has(name));
}
