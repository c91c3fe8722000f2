/** `models publish DIR --to oci://HOST/REPO:TAG`: push the folder as an OCI artifact; prints its digest. */
import { publishOci } from '../../index.js';
import { Session } from '../../project/session.js';
import { ModelsError } from '../../util/errors.js';
import { formatBytes } from '../../util/units.js';
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

export default async function publishOciCommand(globals: GlobalOptions, signal: AbortSignal, dir: string, flags: Flags): Promise<number> {
  const foreign = (['model', 'version', 'alias', 'chunking', 'chunkSize', 'metadata'] as const).find((k) => flags[k] !== undefined);
  if (foreign) {
    const flag = `--${foreign.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new ModelsError('E_USAGE', `${flag} does not apply to --to oci://: the tag names the version, and every file is one layer`, { hint: `drop ${flag}` });
  }
  const out = createOutput(globals);
  const session = new Session(undefined, { cacheDir: globals.cacheDir });
  try {
    const progress = { present: 'already there', mounted: 'mounted', uploaded: 'uploaded' } as const;
    const result = await publishOci({
      sourceDir: dir,
      to: flags.to,
      session,
      signal,
      ...(flags.mountFrom !== undefined ? { mountFrom: flags.mountFrom } : {}),
      onProgress: ({ file, result: outcome }) => out.debug(`${progress[outcome]}: ${file}`),
    });
    out.result(result);
    out.info(
      result.unchanged
        ? `${result.reference} already is ${result.digest}; nothing uploaded`
        : `pushed ${result.reference}: ${result.files} files, ${formatBytes(result.totalSize)}, ${result.blobsUploaded} blobs uploaded (${formatBytes(result.bytesUploaded)})${result.blobsMounted > 0 ? `, ${result.blobsMounted} mounted` : ''}`,
    );
    out.info(`digest: ${result.digest}`);
    return 0;
  } finally {
    await session.close();
  }
}
