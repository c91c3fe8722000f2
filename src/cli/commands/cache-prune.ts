import { parseDuration } from '../../ops/cache.js';
import { formatBytes, parseSize } from '../../util/units.js';
import { ModelsError, pruneCache, type PruneOptions, type PruneResult } from '../../index.js';
import { createInterface } from 'node:readline/promises';
import { type GlobalOptions, type Output, createOutput } from '../output.js';

interface Flags {
  olderThan?: string;
  maxSize?: string;
  dryRun?: boolean;
  yes?: boolean;
}

function describe(out: Output, result: PruneResult, verb: string): void {
  for (const m of result.manifests) out.info(`  ${m.hash.slice(0, 16)}  last used ${m.lastUsed.slice(0, 19).replace('T', ' ')}  ${formatBytes(m.bytes)}`);
  out.info(
    `${verb} ${result.manifests.length} manifest${result.manifests.length === 1 ? '' : 's'}, ${result.files} file${result.files === 1 ? '' : 's'}, ${result.chunks} chunk pointer${result.chunks === 1 ? '' : 's'}` +
      `${result.partials ? `, ${result.partials} partial download${result.partials === 1 ? '' : 's'}` : ''}: ${formatBytes(result.removedBytes)}` +
      `${result.freedBytes < result.removedBytes ? ` (${formatBytes(result.freedBytes)} of disk; the rest is still hardlinked into installs)` : ''}; ` +
      `cache ${formatBytes(result.sizeBefore)} → ${formatBytes(result.sizeAfter)}`,
  );
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export default async function cachePruneCommand(globals: GlobalOptions, signal: AbortSignal, flags: Flags): Promise<number> {
  const out = createOutput(globals);
  const options: PruneOptions = {
    signal,
    ...(globals.cacheDir ? { cacheDir: globals.cacheDir } : {}),
    ...(flags.olderThan !== undefined ? { olderThanMs: parseDuration(flags.olderThan) } : {}),
    ...(flags.maxSize !== undefined ? { maxSizeBytes: parseSize(flags.maxSize) } : {}),
  };
  const plan = await pruneCache({ ...options, dryRun: true });
  const nothing = plan.manifests.length + plan.files + plan.chunks + plan.partials === 0;
  if (flags.dryRun || nothing) {
    out.result(plan);
    if (nothing) out.info(`nothing to prune in ${plan.location} (${formatBytes(plan.sizeBefore)})`);
    else describe(out, plan, 'would remove');
    return 0;
  }
  if (!flags.yes) {
    if (!process.stdin.isTTY) {
      throw new ModelsError('E_USAGE', `cache prune would remove ${formatBytes(plan.removedBytes)} from ${plan.location}, and there is no terminal to confirm`, {
        hint: 'pass -y to prune without asking, or --dry-run to see what would go',
      });
    }
    if (!out.json) describe(out, plan, 'will remove');
    const everything = flags.olderThan === undefined && flags.maxSize === undefined ? ' (everything: no --older-than or --max-size given)' : '';
    if (!(await confirm(`Prune the cache${everything}? [y/N] `))) {
      process.stderr.write('nothing removed\n');
      return 1;
    }
  }
  const result = await pruneCache(options);
  out.result(result);
  describe(out, result, 'removed');
  return 0;
}
