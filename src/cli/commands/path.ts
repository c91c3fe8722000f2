import { ModelsError } from '../../errors.js';
import type { GlobalOptions } from '../output.js';

export default async function command(_globals: GlobalOptions, _signal: AbortSignal): Promise<number> {
  throw new ModelsError('E_USAGE', '`models path` is not implemented yet');
}
