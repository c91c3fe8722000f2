import { add } from '../../index.js';
import { formatBytes } from '../../util/units.js';
import { type GlobalOptions, createOutput } from '../output.js';
import { plainProgress } from '../progress.js';

interface Flags {
  name?: string;
  files?: string[];
  revision?: string;
  path?: string;
  registry?: string;
  extract?: boolean;
  install?: boolean;
}

export default async function addCommand(globals: GlobalOptions, signal: AbortSignal, source: string, flags: Flags): Promise<number> {
  const out = createOutput(globals);
  const view = out.json || out.quiet ? undefined : plainProgress(out);
  const result = await add(
    globals.config ?? 'models.yaml',
    { source, name: flags.name, files: flags.files, revision: flags.revision, path: flags.path, registry: flags.registry, noExtract: flags.extract === false },
    {
      signal,
      noInstall: flags.install === false,
      ...(globals.cacheDir ? { cacheDir: globals.cacheDir } : {}),
      onEvent: (event) => {
        if (event.type === 'warning') out.warn(`warning: ${event.message}`);
        view?.onEvent(event);
      },
    },
  );
  for (const change of result.lock.changes) if (change.note) out.warn(`${change.name}: ${change.note}`);
  out.result({ name: result.name, entry: result.entry, changes: result.lock.changes, installed: result.install?.installed ?? [], bytesDownloaded: result.install?.bytesDownloaded ?? 0 });
  const locked = result.lock.lock.models[result.name];
  out.info(`added ${result.name} to models.yaml${locked ? ` (${locked.model}@${locked.resolved}, ${formatBytes(locked.size)})` : ''}${result.install ? ', locked and installed' : ', locked'}`);
  return 0;
}
