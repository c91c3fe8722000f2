import { doctor } from '../../index.js';
import { formatDoctor } from '../../ops/doctor.js';
import { type GlobalOptions, printable, printableJson } from '../output.js';

export default async function doctorCommand(globals: GlobalOptions, signal: AbortSignal, flags: { root?: string }): Promise<number> {
  const report = await doctor(globals.config ?? 'models.yaml', {
    signal,
    ...(flags.root ? { root: flags.root } : {}),
    ...(globals.cacheDir ? { cacheDir: globals.cacheDir } : {}),
  });
  if (globals.json) process.stdout.write(`${printableJson(report)}\n`);
  // The report is the point of the command: printed even with --quiet when something is wrong.
  else if (!globals.quiet || !report.ready) process.stdout.write(printable(formatDoctor(report), true));
  return report.ready ? 0 : 1;
}
