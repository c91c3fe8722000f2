import { install, lock, loadProject } from '../../index.js';
import { formatBytes } from '../../util/units.js';
import { type GlobalOptions, createOutput } from '../output.js';
import { plainProgress } from '../progress.js';

export default async function updateCommand(globals: GlobalOptions, signal: AbortSignal, names: string[], flags: { concurrency?: number }): Promise<number> {
  const out = createOutput(globals);
  const project = await loadProject(globals.config);
  const cache = globals.cacheDir ? { cacheDir: globals.cacheDir } : {};
  const locked = await lock(project, { update: names.length > 0 ? names : true, signal, ...cache });
  for (const change of locked.changes) {
    out.info(`${change.name}: ${change.model} ${change.from ? `${change.from.resolved} → ` : ''}${change.to.resolved}`);
  }
  if (locked.changes.length === 0) out.info('everything is already at its newest version');
  const view = out.json || out.quiet ? undefined : plainProgress(out);
  const result = await install(project, {
    frozen: true,
    signal,
    ...cache,
    ...(flags.concurrency ? { concurrency: flags.concurrency } : {}),
    ...(view ? { onEvent: (e) => view.onEvent(e) } : {}),
  });
  out.result({ changes: locked.changes, installed: result.installed, skipped: result.skipped, bytesDownloaded: result.bytesDownloaded, bytesFromCache: result.bytesFromCache, durationMs: result.durationMs });
  out.info(`${formatBytes(result.bytesDownloaded)} fetched, ${formatBytes(result.bytesFromCache)} reused from the cache`);
  return 0;
}
