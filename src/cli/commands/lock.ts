import { lock, loadProject } from '../../index.js';
import { parsePlatform } from '../../project/platform.js';
import { type GlobalOptions, createOutput } from '../output.js';

export default async function lockCommand(globals: GlobalOptions, signal: AbortSignal, flags: { update?: boolean | string[]; platform?: string }): Promise<number> {
  const out = createOutput(globals);
  const project = await loadProject(globals.config);
  const update = flags.update === undefined ? undefined : Array.isArray(flags.update) && flags.update.length > 0 ? flags.update : true;
  if (flags.platform !== undefined) parsePlatform(flags.platform); // a typo is exit 2 before any request
  const result = await lock(project, { ...(update !== undefined ? { update } : {}), ...(flags.platform !== undefined ? { platform: flags.platform } : {}), signal, ...(globals.cacheDir ? { cacheDir: globals.cacheDir } : {}) });
  out.result({ written: result.written, changes: result.changes, removed: result.removed, lockfile: project.lockPath });
  for (const change of result.changes) {
    out.info(`${change.name}: ${change.model} ${change.from ? `${change.from.resolved} (${change.from.manifest.slice(0, 12)}) → ` : ''}${change.to.resolved} (${change.to.manifest.slice(0, 12)})`);
  }
  for (const change of result.changes) if (change.note) out.warn(`${change.name}: ${change.note}`);
  for (const name of result.removed) out.info(`${name}: removed`);
  out.info(result.written ? `wrote ${project.lockPath}` : `${project.lockPath} is up to date`);
  return 0;
}
