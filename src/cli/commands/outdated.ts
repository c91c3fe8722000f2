import { outdated, loadProject } from '../../index.js';
import { type GlobalOptions, createOutput, table } from '../output.js';

export default async function outdatedCommand(globals: GlobalOptions, signal: AbortSignal): Promise<number> {
  const out = createOutput(globals);
  const project = await loadProject(globals.config);
  const rows = await outdated(project, { signal, ...(globals.cacheDir ? { cacheDir: globals.cacheDir } : {}) });
  out.result({ models: rows, outdated: rows.some((r) => r.status !== 'current') });
  const short = (v?: { resolved: string; manifest: string }) => (v ? `${v.resolved} (${v.manifest.slice(0, 8)})` : '-');
  const paint = (status: string) => (status === 'current' ? out.green(status) : status === 'changed' || status === 'missing' ? out.red(status) : out.yellow(status));
  out.info(table([['NAME', 'MODEL', 'REQUESTED', 'LOCKED', 'LATEST', 'STATUS'], ...rows.map((r) => [r.name, r.model, r.requested, short(r.locked), short(r.latest), paint(r.status)])]));
  for (const r of rows) if (r.detail && r.status !== 'current') out.info(`  ${r.name}: ${r.detail}`);
  return rows.some((r) => r.status !== 'current') ? 1 : 0;
}
