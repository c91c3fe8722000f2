/** Terminal output: plain when NO_COLOR, CI or not a TTY; JSON documents for --json; silence for --quiet. */
import { ModelsError, isModelsError } from '../util/errors.js';

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

// C0 and C1 controls, DEL, and the bidi overrides that reorder what a terminal shows ("Trojan source").
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const escapeChar = (c: string) => {
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
};

/**
 * Text made safe for a terminal: every control character (ESC, BEL, CR, the C1 range, bidi
 * overrides) shown as an escape such as `\x1b`, so that names and metadata from a registry can
 * neither move the cursor, retitle the window, nor hide or fake output. `keepNewlines` for whole
 * multi-line blocks of our own layout. Every line the CLI prints goes through it.
 */
export function printable(text: string, keepNewlines = false): string {
  return text.replace(keepNewlines ? CONTROL_BUT_NEWLINE : CONTROL, escapeChar);
}

/** A JSON document with the C1 controls and DEL escaped too (JSON.stringify leaves them raw). */
export function printableJson(document: unknown): string {
  return JSON.stringify(document, null, 2).replace(/[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// Our own colours are written as unguessable markers, escaped text cannot forge them; they become
// SGR sequences only after the line has been made printable.
const MARK = `\ue000${Math.random().toString(36).slice(2, 10)}\ue001`;
const MARKER = new RegExp(`${MARK}([0-9;]*)m`, 'g');
const withColors = (line: string) => line.replace(MARKER, '\u001b[$1m');

export function createOutput(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Output {
  const tty = Boolean(process.stdout.isTTY);
  const color = tty && !env.NO_COLOR && !options.json && env.TERM !== 'dumb';
  const paint = (code: string) => (text: string) => (color ? `${MARK}${code}m${text}${MARK}0m` : text);
  const show = (line: string) => withColors(printable(line, true));
  const json = Boolean(options.json);
  const quiet = Boolean(options.quiet);
  return {
    json,
    quiet,
    verbose: Boolean(options.verbose),
    color,
    interactive: tty && !env.CI && !json && !quiet,
    info: (line) => {
      if (!json && !quiet) process.stdout.write(`${show(line)}\n`);
    },
    warn: (line) => process.stderr.write(`${show(line)}\n`),
    debug: (line) => {
      if (options.verbose) process.stderr.write(`debug: ${show(line)}\n`);
    },
    result: (document) => {
      if (json) process.stdout.write(`${printableJson(document)}\n`);
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
    process.stdout.write(`${printableJson({ error: { code: err.code, exitCode: err.exitCode, message: err.message, hint: err.hint ?? null } })}\n`);
  }
  // One line each, whatever a registry put into a version name or a URL.
  process.stderr.write(`error: ${printable(err.message)}\n`);
  if (err.hint) process.stderr.write(`hint: ${printable(err.hint)}\n`);
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
export function table(input: string[][]): string {
  // A cell is one line: a newline in a registry's version name must not fake a row.
  const rows = input.map((row) => row.map((cell) => printable(cell)));
  const visible = (s: string) => s.replace(MARKER, '').length;
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visible(cell))));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visible(cell)))).join('  ').trimEnd())
    .join('\n');
}
