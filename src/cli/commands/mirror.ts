import { loadProject, mirror } from '../../index.js';
import { formatBytes } from '../../util/units.js';
import { pathToFileURL } from 'node:url';
import { type GlobalOptions, createOutput } from '../output.js';

interface Flags {
  out: string;
  offline?: boolean;
  concurrency?: number;
}

export default async function mirrorCommand(globals: GlobalOptions, signal: AbortSignal, names: string[], flags: Flags): Promise<number> {
  const out = createOutput(globals);
  const project = await loadProject(globals.config);
  const result = await mirror(project, {
    out: flags.out,
    names,
    signal,
    ...(flags.offline ? { offline: true } : {}),
    ...(flags.concurrency ? { concurrency: flags.concurrency } : {}),
    ...(globals.cacheDir ? { cacheDir: globals.cacheDir } : {}),
    onEvent: (event) => {
      if (event.type === 'model') out.debug(`${event.name}: ${event.model}@${event.resolved}, ${event.chunks} chunks, ${formatBytes(event.size)}`);
      else out.debug(`chunk ${event.hash.slice(0, 12)} (${formatBytes(event.size)}): ${event.source}`);
    },
  });
  out.result(result);
  for (const m of result.models) {
    out.info(`${m.name}  ${m.model}@${m.resolved}  ${formatBytes(m.size)}  ${m.chunksWritten ? `${m.chunksWritten}/${m.chunks} chunks written` : 'already mirrored'}`);
  }
  const nothing = result.chunksWritten === 0 && result.manifestsWritten === 0 && !result.indexWritten;
  out.info(
    nothing
      ? `${result.out} is up to date (${result.models.length} models, nothing written)`
      : `mirrored ${result.models.length} models into ${result.out}: ${result.chunksWritten} chunks and ${result.manifestsWritten} manifests written (${formatBytes(result.bytesWritten)}; ${formatBytes(result.bytesFromCache)} from the cache, ${formatBytes(result.bytesDownloaded)} from registries), ${result.chunksSkipped} chunks already there`,
  );
  out.info(`install from it with: MODELS_MIRRORS=${pathToFileURL(result.out).href} models install --frozen --offline`);
  return 0;
}
