import { doctor, formatDoctor } from '../../index.js';
import type { GlobalOptions } from '../output.js';

export default async function doctorCommand(globals: GlobalOptions, signal: AbortSignal, flags: { root?: string }): Promise<number> {
  const report = await doctor(globals.config ?? 'models.yaml', {
    signal,
    ...(flags.root ? { root: flags.root } : {}),
    ...(globals.cacheDir ? { cacheDir: globals.cacheDir } : {}),
  });
  if (globals.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  // The report is the point of the command: printed even with --quiet when something is wrong.
  else if (!globals.quiet || !report.ready) process.stdout.write(formatDoctor(report));
  return report.ready ? 0 : 1;
}
