import { formatBytes, parseSize } from '../../util/units.js';
// Straight from the modules, not the API's index: a no-op install then loads no network or store code.
import { selectEntries } from '../../install/entries.js';
import { install } from '../../install/install.js';
import type { InstallOptions } from '../../install/types.js';
import { loadProject } from '../../project/project.js';
import type { LinkMode } from '../../store/store.js';
import { type GlobalOptions, createOutput } from '../output.js';
import { type ProgressView, interactiveProgress, plainProgress } from '../progress.js';

interface Flags {
  frozen?: boolean;
  only?: string[];
  platform?: string;
  root?: string;
  concurrency?: number;
  cache?: boolean;
  verify?: boolean;
  offline?: boolean;
  limitRate?: string;
  link?: LinkMode;
  force?: boolean;
}

export default async function installCommand(globals: GlobalOptions, signal: AbortSignal, flags: Flags): Promise<number> {
  const out = createOutput(globals);
  const project = await loadProject(globals.config);
  const options: InstallOptions = {
    frozen: Boolean(flags.frozen),
    ...(flags.only ? { only: flags.only } : {}),
    ...(flags.platform ? { platform: flags.platform } : {}),
    ...(flags.root ? { root: flags.root } : {}),
    ...(flags.concurrency ? { concurrency: flags.concurrency } : {}),
    noCache: flags.cache === false,
    verify: Boolean(flags.verify),
    offline: Boolean(flags.offline),
    ...(flags.limitRate ? { limitRate: parseSize(flags.limitRate) } : {}),
    ...(flags.link ? { linkMode: flags.link } : {}),
    ...(flags.force ? { force: true } : {}),
    ...(globals.cacheDir ? { cacheDir: globals.cacheDir } : {}),
    signal,
  };
  const names = selectEntries(project.config.models, options.only, options.platform).map((m) => m.name);
  const view: ProgressView | undefined = out.json || out.quiet ? undefined : out.interactive ? await interactiveProgress(names) : plainProgress(out);
  // Warnings reach stderr whatever the view (also with --json and --quiet): they report data at risk.
  options.onEvent = (event) => {
    if (event.type === 'warning') out.warn(`warning: ${event.message}`);
    // As npm ci does: a model dropped from models.yaml is named as its folder goes.
    if (event.type === 'removed') out.info(`removed ${event.name} (${event.path})`);
    view?.onEvent(event);
  };
  let result;
  try {
    result = await install(project, options);
  } catch (error) {
    await view?.finish(error);
    throw error;
  }
  await view?.finish();
  out.result({
    installed: result.installed,
    skipped: result.skipped,
    removed: result.removed,
    movedAside: result.movedAside,
    leftInPlace: result.leftInPlace,
    bytesDownloaded: result.bytesDownloaded,
    bytesFromCache: result.bytesFromCache,
    durationMs: result.durationMs,
    root: result.root,
  });
  for (const moved of result.movedAside) out.warn(`${moved.name}: moved ${moved.from} aside to ${moved.to} (it was not written by xprim-models)`);
  for (const path of result.leftInPlace) out.warn(`left in place: ${path} (not written by xprim-models, or changed since)`);
  const total = result.installed.length + result.skipped.length;
  const removed = result.removed.length > 0 ? `, ${result.removed.length} removed` : '';
  out.info(
    result.installed.length === 0
      ? `${total} model${total === 1 ? '' : 's'} up to date${removed} in ${result.root}`
      : `${result.installed.length} installed, ${result.skipped.length} up to date${removed}, ${formatBytes(result.bytesDownloaded)} downloaded, ${formatBytes(result.bytesFromCache)} from cache in ${(result.durationMs / 1000).toFixed(1)}s`,
  );
  return 0;
}
