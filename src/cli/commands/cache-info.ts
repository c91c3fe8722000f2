import { cacheInfo } from '../../index.js';
import { formatBytes } from '../../util/units.js';
import { type GlobalOptions, createOutput, table } from '../output.js';

export default async function cacheInfoCommand(globals: GlobalOptions): Promise<number> {
  const out = createOutput(globals);
  const info = await cacheInfo({ ...(globals.cacheDir ? { cacheDir: globals.cacheDir } : {}) });
  out.result(info);
  out.info(
    table([
      ['location:', info.location + (info.exists ? '' : ' (empty: nothing cached yet)')],
      ['size:', `${formatBytes(info.totalBytes)}`],
      ['files:', `${info.files.count} (${formatBytes(info.files.bytes)})`],
      ['chunks:', String(info.chunks)],
      ['manifests:', String(info.manifests.count)],
      ['partial downloads:', `${info.partial.count}${info.partial.count ? ` (${formatBytes(info.partial.bytes)})` : ''}`],
    ]),
  );
  return 0;
}
