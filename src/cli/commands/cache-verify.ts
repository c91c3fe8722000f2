import { verifyCache } from '../../index.js';
import { formatBytes } from '../../util/units.js';
import { type GlobalOptions, createOutput, formatDuration } from '../output.js';

export default async function cacheVerifyCommand(globals: GlobalOptions, signal: AbortSignal): Promise<number> {
  const out = createOutput(globals);
  const result = await verifyCache({ signal, ...(globals.cacheDir ? { cacheDir: globals.cacheDir } : {}) });
  out.result(result);
  for (const r of result.removed) out.info(`removed corrupt ${r.kind} ${r.hash} (${r.reason})`);
  out.info(
    `checked ${result.checked.files} files, ${result.checked.chunks} chunks, ${result.checked.manifests} manifests (${formatBytes(result.bytesHashed)}) in ${formatDuration(result.durationMs)}: ` +
      (result.removed.length === 0 ? 'all good' : `${result.removed.length} corrupt entr${result.removed.length === 1 ? 'y' : 'ies'} removed; they are fetched again when needed`),
  );
  return 0;
}
