import { verify, loadProject } from '../../index.js';
import { formatBytes } from '../../util/units.js';
import { type GlobalOptions, createOutput, formatDuration, table } from '../output.js';

interface Flags {
  root?: string;
  concurrency?: number;
  offline?: boolean;
}

export default async function verifyCommand(globals: GlobalOptions, signal: AbortSignal, names: string[], flags: Flags): Promise<number> {
  const out = createOutput(globals);
  const project = await loadProject(globals.config);
  const report = await verify(project, {
    ...(names.length > 0 ? { names } : {}),
    ...(flags.root ? { root: flags.root } : {}),
    ...(flags.concurrency ? { concurrency: flags.concurrency } : {}),
    ...(globals.cacheDir ? { cacheDir: globals.cacheDir } : {}),
    offline: Boolean(flags.offline),
    signal,
  });
  out.result(report);
  const paint = (status: string) => (status === 'ok' ? out.green(status) : status === 'missing' ? out.yellow(status) : out.red(status));
  out.info(
    table([
      ['NAME', 'MODEL', 'FILES', 'SIZE', 'STATUS'],
      ...report.models.map((m) => [m.name, `${m.model}@${m.resolved}`, String(m.files.length), formatBytes(m.files.reduce((s, f) => s + f.size, 0)), paint(m.status)]),
    ]),
  );
  for (const m of report.models) {
    if (m.status === 'ok') continue;
    if (m.detail) out.info(`  ${m.name}: ${m.detail}`);
    const bad = m.files.filter((f) => f.status !== 'ok');
    // A model that is simply not installed needs no file-by-file list.
    if (bad.length === m.files.length && bad.every((f) => f.status === 'missing') && m.files.length > 3) continue;
    for (const f of bad) out.info(`  ${m.name}: ${f.path}: ${f.status}${f.detail ? ` (${f.detail})` : ''}`);
  }
  out.info(`${report.filesChecked} files, ${formatBytes(report.bytesHashed)} hashed in ${formatDuration(report.durationMs)}`);
  if (report.exitCode === 6 && !out.json) process.stderr.write('hint: `models install --verify` puts the locked bytes back\n');
  if (report.exitCode === 4 && !out.json) process.stderr.write('hint: run `models install`\n');
  return report.exitCode;
}
