import { loadProject, modelFolder } from '../../index.js';
import { type GlobalOptions, createOutput } from '../output.js';

export default async function pathCommand(globals: GlobalOptions, _signal: AbortSignal, name: string, flags: { root?: string }): Promise<number> {
  const out = createOutput(globals);
  const project = await loadProject(globals.config);
  const path = await modelFolder(project, name, { root: flags.root });
  if (out.json) out.result({ name, path });
  // Printed even with --quiet: the path is the command's whole output, used as $(models path NAME).
  else process.stdout.write(`${path}\n`);
  return 0;
}
