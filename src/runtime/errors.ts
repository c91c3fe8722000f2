/** The one error xprim-models/runtime throws, and the messages it says what to do with. */
import { dirname } from 'node:path';

export const HINT_INSTALL = 'run: models install --frozen';
export const HINT_REINSTALL = 'reinstall the app';

export type ReadinessErrorCode =
  | 'E_NOT_INSTALLED' // no integrity file
  | 'E_INTEGRITY_FILE' // integrity file unreadable, malformed or hostile
  | 'E_UNKNOWN_MODEL' // a name or tag that the integrity file does not know
  | 'E_USAGE' // bad options
  | 'E_ABORTED';

const exitCodes: Record<ReadinessErrorCode, number> = {
  E_NOT_INSTALLED: 4,
  E_INTEGRITY_FILE: 2,
  E_UNKNOWN_MODEL: 4,
  E_USAGE: 2,
  E_ABORTED: 130,
};

/** The one error this module throws. `message` is one line that already says what to do (`hint`). */
export class ReadinessError extends Error {
  readonly code: ReadinessErrorCode;
  /** The CLI exit code with the same meaning (SPEC), for tools that wrap this module. */
  readonly exitCode: number;
  readonly hint: string | undefined;
  /** The integrity file concerned, when there is one. */
  readonly file: string | undefined;

  constructor(code: ReadinessErrorCode, what: string, options: { hint?: string; file?: string; cause?: unknown } = {}) {
    super(options.hint ? `${what} (${options.hint})` : what, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ReadinessError';
    this.code = code;
    this.exitCode = exitCodes[code];
    this.hint = options.hint;
    this.file = options.file;
  }
}

export function notInstalled(file: string, cause: unknown): ReadinessError {
  return new ReadinessError('E_NOT_INSTALLED', `models integrity file not found: ${file}`, {
    hint: `${HINT_INSTALL} --root ${dirname(file)} (developer machine), or ${HINT_REINSTALL}`,
    file,
    cause,
  });
}

export function unreadable(file: string, cause: unknown): ReadinessError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const detail = code ?? (cause instanceof Error ? cause.message : String(cause));
  return new ReadinessError('E_INTEGRITY_FILE', `cannot read models integrity file ${file}: ${detail}`, {
    hint: `check the file's permissions, or ${HINT_REINSTALL}`,
    file,
    cause,
  });
}

export function malformed(file: string, problem: string): ReadinessError {
  return new ReadinessError('E_INTEGRITY_FILE', `invalid models integrity file ${file}: ${problem}`, {
    hint: `${HINT_INSTALL} --root ${dirname(file)} to rewrite it, or ${HINT_REINSTALL}`,
    file,
  });
}

export function aborted(signal: AbortSignal): ReadinessError {
  return new ReadinessError('E_ABORTED', 'model readiness check interrupted', { cause: signal.reason });
}
