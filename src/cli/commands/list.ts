import { formatBytes } from '../../util/units.js';
import { loadProject, isModelsError, installStatuses, listRemote, type Project } from '../../index.js';
import { type GlobalOptions, createOutput, table } from '../output.js';

interface Flags {
  remote?: boolean;
  root?: string;
  registry?: string;
}

export default async function listCommand(globals: GlobalOptions, signal: AbortSignal, flags: Flags): Promise<number> {
  const out = createOutput(globals);
  if (flags.remote) {
    let project: Project | undefined;
    try {
      project = await loadProject(globals.config);
    } catch (error) {
      // --registry alone is enough to read a catalog.
      if (!(flags.registry && isModelsError(error) && error.code === 'E_CONFIG')) throw error;
    }
    const rows = await listRemote(project, { signal, ...(flags.registry ? { registry: flags.registry } : {}), ...(globals.cacheDir ? { cacheDir: globals.cacheDir } : {}) });
    out.result({ models: rows });
    const registries = new Set(rows.map((r) => r.registry));
    out.info(
      table([
        ['MODEL', 'VERSION', 'MANIFEST', 'METADATA', ...(registries.size > 1 ? ['REGISTRY'] : [])],
        ...rows.map((r) => [
          r.model,
          r.aliasOf ? `${r.version} → ${r.aliasOf}` : r.version,
          r.manifest.slice(0, 12),
          Object.entries(r.metadata).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ') || '-',
          ...(registries.size > 1 ? [r.registry] : []),
        ]),
      ]),
    );
    if (rows.length === 0) out.info('(the registry lists no models)');
    return 0;
  }
  const project = await loadProject(globals.config);
  const { root, models } = await installStatuses(project, { root: flags.root });
  out.result({ root, models });
  const paint = (status: string) => (status === 'installed' ? out.green(status) : status === 'other-platform' ? out.dim(status) : status === 'corrupt' ? out.red(status) : out.yellow(status));
  out.info(
    table([
      ['NAME', 'MODEL', 'VERSION', 'SIZE', 'STATUS', 'PATH'],
      ...models.map((m) => [
        m.name,
        m.model,
        m.resolved && m.resolved !== m.version ? `${m.version} (${m.resolved})` : m.version,
        m.size !== undefined ? formatBytes(m.size) : '-',
        paint(m.status),
        m.path,
      ]),
    ]),
  );
  for (const m of models) if (m.detail && m.status !== 'installed' && m.status !== 'other-platform') out.info(`  ${m.name}: ${m.detail}`);
  return 0;
}
