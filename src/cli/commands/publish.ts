import { ModelsError, publish } from '../../index.js';
import { formatBytes, parseSize } from '../../util/units.js';
import { type GlobalOptions, createOutput } from '../output.js';

interface Flags {
  to: string;
  model?: string;
  version?: string;
  alias?: string[];
  chunking?: string;
  chunkSize?: string;
  metadata?: string[];
  mountFrom?: string;
}

export default async function publishCommand(globals: GlobalOptions, signal: AbortSignal, dir: string, flags: Flags): Promise<number> {
  if (flags.to.startsWith('oci://')) return (await import('./publish-oci.js')).default(globals, signal, dir, flags);
  if (flags.mountFrom !== undefined) throw new ModelsError('E_USAGE', '--mount-from applies only to --to oci://HOST/REPO:TAG', { hint: 'drop --mount-from' });
  const out = createOutput(globals);
  if (!flags.model || !flags.version) {
    throw new ModelsError('E_USAGE', `publish to a registry folder needs ${!flags.model ? '--model GROUP/MODEL' : '--version V'}`, { hint: 'e.g. models publish ./out --to ./registry --model acme/vad --version v5 (or --to oci://HOST/REPO:TAG)' });
  }
  const metadata: Record<string, string> = {};
  for (const pair of flags.metadata ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ModelsError('E_USAGE', `--metadata "${pair}": expected KEY=VALUE`, { hint: 'e.g. --metadata license=MIT' });
    metadata[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const result = await publish({
    sourceDir: dir,
    registryDir: flags.to,
    model: flags.model,
    version: flags.version,
    ...(flags.alias ? { aliases: flags.alias } : {}),
    ...(flags.chunking ? { chunking: flags.chunking as 'fixed' | 'cdc' } : {}),
    ...(flags.chunkSize ? { chunkSize: parseSize(flags.chunkSize) } : {}),
    ...(Object.keys(metadata).length > 0 ? { metadata } : {}),
  });
  out.result(result);
  out.info(
    result.unchanged
      ? `${result.model}@${result.version} already published (manifest ${result.manifestHash.slice(0, 12)}); nothing written`
      : `published ${result.model}@${result.version}: ${result.files} files, ${formatBytes(result.totalSize)}, ${result.chunks} ${result.chunking} chunks (${result.chunksWritten} new), manifest ${result.manifestHash}`,
  );
  return 0;
}
