/** Terminal output: plain when NO_COLOR, CI or not a TTY; JSON documents for --json; silence for --quiet. */
import { ModelsError, isModelsError } from '../errors.js';

export interface GlobalOptions {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  config?: string;
  cacheDir?: string;
}

export interface Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  readonly color: boolean;
  /** Animated progress is allowed: a TTY, not CI, not --json/--quiet. */
  readonly interactive: boolean;
  info(line: string): void;
  warn(line: string): void;
  debug(line: string): void;
  result(document: unknown): void;
  bold(text: string): string;
  dim(text: string): string;
  green(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
}

export function createOutput(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Output {
  const tty = Boolean(process.stdout.isTTY);
  const color = tty && !env.NO_COLOR && !options.json && env.TERM !== 'dumb';
  const paint = (code: string) => (text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const json = Boolean(options.json);
  const quiet = Boolean(options.quiet);
  return {
    json,
    quiet,
    verbose: Boolean(options.verbose),
    color,
    interactive: tty && !env.CI && !json && !quiet,
    info: (line) => {
      if (!json && !quiet) process.stdout.write(`${line}\n`);
    },
    warn: (line) => process.stderr.write(`${line}\n`),
    debug: (line) => {
      if (options.verbose) process.stderr.write(`debug: ${line}\n`);
    },
    result: (document) => {
      if (json) process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    },
    bold: paint('1'),
    dim: paint('2'),
    green: paint('32'),
    red: paint('31'),
    yellow: paint('33'),
  };
}

/** Print an error as one line plus a hint (JSON on stdout with --json); return the exit code. */
export function reportError(error: unknown, options: GlobalOptions): number {
  const err = isModelsError(error)
    ? error
    : new ModelsError('E_INTERNAL', `unexpected error: ${error instanceof Error ? error.message : String(error)}`, {
        hint: 'run again with --verbose and report it with the output',
        cause: error,
      });
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ error: { code: err.code, exitCode: err.exitCode, message: err.message, hint: err.hint ?? null } }, null, 2)}\n`);
  }
  process.stderr.write(`error: ${err.message}\n`);
  if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
  if (options.verbose) {
    const cause = (err as { cause?: unknown }).cause ?? err;
    process.stderr.write(`${cause instanceof Error ? cause.stack : String(cause)}\n`);
  }
  return err.exitCode;
}


export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

/** Align columns; the header row first. */
export function table(rows: string[][]): string {
  // eslint-disable-next-line no-control-regex -- strip ANSI colour codes to measure width
  const visible = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '').length;
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visible(cell))));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visible(cell)))).join('  ').trimEnd())
    .join('\n');
}
