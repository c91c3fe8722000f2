/** What the readiness check returns and takes: the public shapes of xprim-models/runtime. */

export type ModelState = 'ready' | 'missing' | 'corrupt';

export interface FileReport {
  path: string;
  state: ModelState;
  /** Why the file is not ready (e.g. "size 10 != 12", "sha256 mismatch", "not found", "mtime changed"). */
  reason?: string;
}

export interface ModelReport {
  name: string;
  model: string;
  version: string;
  resolved: string;
  tags: string[];
  state: ModelState;
  /** Absolute folder of the model. */
  path: string;
  files: FileReport[];
}

export interface ReadinessReport {
  /** Every checked model is ready. */
  ready: boolean;
  models: Record<string, ModelReport>;
  /** A tag is ready when all its models are ready; corrupt if any is corrupt; else missing. */
  tags: Record<string, ModelState>;
  /** True when a model of that name, or else a tag of that name, is ready; false when unknown. */
  isReady(nameOrTag: string): boolean;
  /** A copyable plain-text report: one line per model, one per tag, a hint for each problem. */
  toText(): string;
}

export interface CheckOptions {
  /** fast: existence + size (+ mtime); full: streaming sha256 of every file. Default fast. */
  mode?: 'fast' | 'full';
  /** Default false (installers often rewrite mtimes); when true a differing recorded mtime is corrupt. */
  checkMtime?: boolean;
  /** Model names or tags; unknown ones throw, so that a typo does not pass silently. */
  only?: string[];
  /** Files hashed at once in full mode; default 4. */
  concurrency?: number;
  signal?: AbortSignal;
}
