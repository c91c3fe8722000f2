/**
 * One error taxonomy for the CLI, the API and the Action. Every failure that reaches a user is a
 * ModelsError: a stable `code`, the SPEC's `exitCode`, a one-line message naming the file, model, URL
 * or path, and a `hint` that says what to do next.
 */

export const ExitCode = {
  ok: 0,
  general: 1,
  usage: 2,
  notFound: 3,
  notInstalled: 4,
  network: 5,
  integrity: 6,
  storage: 7,
  frozen: 8,
  auth: 9,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorCode =
  | 'E_USAGE'
  | 'E_CONFIG'
  | 'E_LOCKFILE'
  | 'E_NOT_FOUND'
  | 'E_NOT_INSTALLED'
  | 'E_NETWORK'
  | 'E_HTTP'
  | 'E_INTEGRITY'
  | 'E_MANIFEST'
  | 'E_INDEX'
  | 'E_STORAGE'
  | 'E_NO_SPACE'
  | 'E_LOCK_TIMEOUT'
  | 'E_FROZEN'
  | 'E_AUTH'
  | 'E_OFFLINE'
  | 'E_ABORTED'
  | 'E_INTERNAL';

const exitCodes: Record<ErrorCode, ExitCodeValue> = {
  E_USAGE: ExitCode.usage,
  E_CONFIG: ExitCode.usage,
  E_LOCKFILE: ExitCode.usage,
  E_NOT_FOUND: ExitCode.notFound,
  E_NOT_INSTALLED: ExitCode.notInstalled,
  E_NETWORK: ExitCode.network,
  E_HTTP: ExitCode.network,
  E_INTEGRITY: ExitCode.integrity,
  E_MANIFEST: ExitCode.general,
  E_INDEX: ExitCode.general,
  E_STORAGE: ExitCode.storage,
  E_NO_SPACE: ExitCode.storage,
  E_LOCK_TIMEOUT: ExitCode.storage,
  E_FROZEN: ExitCode.frozen,
  E_AUTH: ExitCode.auth,
  E_OFFLINE: ExitCode.network,
  E_ABORTED: ExitCode.interrupted,
  E_INTERNAL: ExitCode.general,
};

export interface ModelsErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Where in a file the problem is, for annotations (Action) and editors. */
  file?: string;
  line?: number;
  column?: number;
  exitCode?: ExitCodeValue;
}

export class ModelsError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCodeValue;
  readonly hint: string | undefined;
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;

  constructor(code: ErrorCode, message: string, options: ModelsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ModelsError';
    this.code = code;
    this.exitCode = options.exitCode ?? exitCodes[code];
    this.hint = options.hint;
    this.file = options.file;
    this.line = options.line;
    this.column = options.column;
  }

  /** The one line a user sees: message, then the hint. */
  toDisplayString(): string {
    return this.hint ? `${this.message} (hint: ${this.hint})` : this.message;
  }
}

export function isModelsError(error: unknown): error is ModelsError {
  return error instanceof ModelsError;
}

/** Map a Node file-system error to a storage ModelsError naming the path. */
export function storageError(error: unknown, action: string, path: string): ModelsError {
  if (isModelsError(error)) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new ModelsError('E_NO_SPACE', `no space left on device while trying to ${action} ${path}`, {
      hint: 'free some disk space (models cache prune) or point --cache-dir / --root at a bigger disk',
      cause: error,
    });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new ModelsError('E_STORAGE', `permission denied: cannot ${action} ${path}`, {
      hint: 'check the folder permissions, or choose another --root / --cache-dir',
      cause: error,
    });
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new ModelsError('E_STORAGE', `cannot ${action} ${path}: ${detail}`, {
    hint: 'check that the path exists and is writable',
    cause: error,
  });
}

export function abortError(): ModelsError {
  return new ModelsError('E_ABORTED', 'interrupted', {
    hint: 'run the same command again to resume; verified data is kept',
  });
}
