import { remove } from '../../index.js';
import { type GlobalOptions, createOutput } from '../output.js';

export default async function removeCommand(globals: GlobalOptions, _signal: AbortSignal, names: string[], flags: { root?: string }): Promise<number> {
  const out = createOutput(globals);
  const result = await remove(globals.config ?? 'models.yaml', names, { ...(flags.root ? { root: flags.root } : {}) });
  out.result(result);
  for (const gone of result.removed) out.info(`removed ${gone.name} (${gone.path})`);
  for (const path of result.leftInPlace) out.warn(`left in place: ${path} (not written by xprim-models, or changed since)`);
  out.info(`removed ${names.join(', ')} from models.yaml and models.lock`);
  return 0;
}
