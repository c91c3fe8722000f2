import { formatBytes } from '../../util/units.js';
import { loadProject, isModelsError, modelInfo, type Project } from '../../index.js';
import { type GlobalOptions, createOutput, table } from '../output.js';

interface Flags {
  remote?: boolean;
  registry?: string;
  root?: string;
}

export default async function infoCommand(globals: GlobalOptions, signal: AbortSignal, what: string, version: string | undefined, flags: Flags): Promise<number> {
  const out = createOutput(globals);
  let project: Project | undefined;
  try {
    project = await loadProject(globals.config);
  } catch (error) {
    // GROUP/MODEL with --registry needs no models.yaml.
    if (!(what.includes('/') && flags.registry && isModelsError(error) && error.code === 'E_CONFIG')) throw error;
  }
  const info = await modelInfo(project, what, version, {
    signal,
    remote: Boolean(flags.remote),
    ...(flags.registry ? { registry: flags.registry } : {}),
    ...(flags.root ? { root: flags.root } : {}),
    ...(globals.cacheDir ? { cacheDir: globals.cacheDir } : {}),
  });
  out.result(info);
  if (info.kind === 'versions') {
    out.info(`${info.model} in ${info.registry}`);
    out.info(
      table([
        ['VERSION', 'MANIFEST', 'METADATA'],
        ...info.versions.map((v) => [v.aliasOf ? `${v.version} → ${v.aliasOf}` : v.version, v.manifest.slice(0, 12), Object.entries(v.metadata).map(([k, x]) => `${k}=${typeof x === 'string' ? x : JSON.stringify(x)}`).join(' ') || '-']),
      ]),
    );
    return 0;
  }
  const pairs: [string, string][] = [
    ...(info.name ? [['name', info.name] as [string, string]] : []),
    ['model', info.model],
    ['version', info.resolved === info.version ? info.version : `${info.version} → ${info.resolved}`],
    ['registry', info.registry],
    ['manifest', info.manifest],
    ['size', `${formatBytes(info.totalSize)} (${info.totalSize} bytes) in ${info.files.length} file${info.files.length === 1 ? '' : 's'}`],
    ['chunks', `${info.chunks} × up to ${formatBytes(info.chunkSize)}`],
  ];
  if (info.install) pairs.push(['installed', `${info.install.status} at ${info.install.path}${info.install.detail && info.install.status !== 'installed' ? ` (${info.install.detail})` : ''}`]);
  if (info.latest && info.latest.manifest !== info.manifest) pairs.push(['latest', `${info.latest.resolved} (${info.latest.manifest.slice(0, 12)}): run \`models update ${info.name ?? ''}\``.replace(/ `$/, '`')]);
  for (const [key, value] of Object.entries(info.metadata ?? {})) pairs.push([`metadata.${key}`, typeof value === 'string' ? value : JSON.stringify(value)]);
  out.info(table(pairs.map(([k, v]) => [`${k}:`, v])));
  out.info('');
  out.info(table([['FILE', 'SIZE', 'SHA256'], ...info.files.map((f) => [f.path, formatBytes(f.size), f.sha256 ? f.sha256.slice(0, 16) : '-'])]));
  return 0;
}
