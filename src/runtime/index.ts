/**
 * xprim-models/runtime: a readiness check for apps that ship models installed by
 * `models install --root <dir>`. It reads `<root>/models.integrity.json` and checks the files on disk.
 *
 * Deliberately self-contained: only node: built-ins, so an app's start-up path does not pull the
 * CLI's dependencies (undici, listr2, ajv, yaml) into its bundle.
 */

export { INTEGRITY_FILE, INTEGRITY_VERSION } from './integrity.js';
export type { CheckOptions, FileReport, ModelReport, ModelState, ReadinessReport } from './types.js';
export { ReadinessError, type ReadinessErrorCode } from './errors.js';
export { checkModels } from './check.js';
export { modelPath } from './select.js';
/** For tests: the copied path rule, to compare with src/util/paths.ts. */
export { checkRelativePathForTest } from './paths.js';
