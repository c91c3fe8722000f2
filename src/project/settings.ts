/**
 * The settings a run reads from flags and the environment (MODELS_CONCURRENCY, the timeouts, the
 * retry policy, MODELS_TOKEN, MODELS_MIRRORS), each checked with a one-line usage error. Kept apart
 * from the session so a no-op install can check them without loading the network and store layers.
 */
import { resolveRegistry } from './config.js';
import { ModelsError } from '../util/errors.js';
import type { RetryPolicy } from '../registry/client.js';

export const DEFAULT_CONCURRENCY = 8;

export const MAX_CONCURRENCY = 256;

/** --concurrency, else MODELS_CONCURRENCY, else the default; out of range is a usage error (exit 2). */
export function concurrencyFrom(value: number | undefined, env: NodeJS.ProcessEnv): number {
  if (value === undefined) return envNumber(env, 'MODELS_CONCURRENCY', 1, MAX_CONCURRENCY, DEFAULT_CONCURRENCY, true);
  if (!Number.isInteger(value) || value < 1 || value > MAX_CONCURRENCY) {
    throw new ModelsError('E_USAGE', `--concurrency ${value}: expected an integer from 1 to ${MAX_CONCURRENCY}`, {
      hint: 'pass --concurrency N or set MODELS_CONCURRENCY',
    });
  }
  return value;
}

/** MODELS_LOCK_TIMEOUT (seconds) in milliseconds, else `fallbackMs`. */
export function lockTimeoutFrom(env: NodeJS.ProcessEnv, fallbackMs: number): number {
  return envNumber(env, 'MODELS_LOCK_TIMEOUT', 0, 7 * 24 * 3600, fallbackMs / 1000) * 1000;
}

/** MODELS_IDLE_TIMEOUT (seconds) in milliseconds. */
export function idleTimeoutFrom(env: NodeJS.ProcessEnv): number {
  return envNumber(env, 'MODELS_IDLE_TIMEOUT', 0.01, 3600, 30) * 1000;
}

/** MODELS_HEADERS_TIMEOUT (seconds) in milliseconds. */
export function headersTimeoutFrom(env: NodeJS.ProcessEnv): number {
  return envNumber(env, 'MODELS_HEADERS_TIMEOUT', 0.01, 3600, 20) * 1000;
}

/** MODELS_SPEED_LIMIT bytes/s over MODELS_SPEED_TIME seconds, as curl's --speed-limit/--speed-time. */
export function lowSpeedFrom(env: NodeJS.ProcessEnv): { bytesPerSecond: number; windowMs: number } {
  return {
    bytesPerSecond: envNumber(env, 'MODELS_SPEED_LIMIT', 0, 1 << 30, 1024),
    windowMs: envNumber(env, 'MODELS_SPEED_TIME', 0.01, 3600, 30) * 1000,
  };
}

/** MODELS_RETRIES (attempts at most) and MODELS_RETRY_BUDGET (seconds a request may keep failing), when set. */
export function retryFromEnv(env: NodeJS.ProcessEnv): Partial<RetryPolicy> {
  return {
    ...(env.MODELS_RETRIES?.trim() ? { attempts: envNumber(env, 'MODELS_RETRIES', 1, 100, 30, true) } : {}),
    ...(env.MODELS_RETRY_BUDGET?.trim() ? { budgetMs: envNumber(env, 'MODELS_RETRY_BUDGET', 0, 86_400, 60) * 1000 } : {}),
  };
}

/** Every numeric setting in the environment, checked at once: a bad one is refused up front, work or not. */
export function checkEnvironment(env: NodeJS.ProcessEnv): void {
  concurrencyFrom(undefined, env);
  lockTimeoutFrom(env, 0);
  idleTimeoutFrom(env);
  headersTimeoutFrom(env);
  lowSpeedFrom(env);
  retryFromEnv(env);
  envToken(env);
  rangeSizeFrom(env);
  uploadChunkFrom(env);
}

/** MODELS_RANGE_SIZE (bytes): a whole file of at least twice this is fetched as concurrent ranges of about this size. */
export function rangeSizeFrom(env: NodeJS.ProcessEnv): number {
  return envNumber(env, 'MODELS_RANGE_SIZE', 1024 * 1024, 1024 * 1024 * 1024, 32 * 1024 * 1024, true);
}

/** MODELS_UPLOAD_CHUNK (bytes): the body of each PATCH of an OCI blob upload (a registry or proxy may cap request bodies). */
export function uploadChunkFrom(env: NodeJS.ProcessEnv): number {
  return envNumber(env, 'MODELS_UPLOAD_CHUNK', 1024 * 1024, 1024 * 1024 * 1024, 32 * 1024 * 1024, true);
}

// A plain decimal number: not hex, not "Infinity", not "1_000".
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Every numeric environment setting is read here (MODELS_CONCURRENCY, MODELS_LOCK_TIMEOUT and
 * MODELS_IDLE_TIMEOUT seconds, MODELS_RETRIES attempts, …): unset or empty gives `fallback`; anything
 * else that is not a decimal number in [min, max] is a usage error (exit 2) naming the variable.
 */
export function envNumber(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback: number, integer = false): number {
  const text = env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const n = DECIMAL.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new ModelsError('E_USAGE', `${name}=${JSON.stringify(text)}: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`, {
      hint: `fix or unset ${name}`,
    });
  }
  return n;
}

/**
 * MODELS_TOKEN without the whitespace a copy from a file brings along (a trailing newline). What is
 * left must be one header-safe word; the message names the variable, never the value.
 */
export function envToken(env: NodeJS.ProcessEnv): string | undefined {
  const token = env.MODELS_TOKEN?.trim();
  if (!token) return undefined;
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new ModelsError('E_USAGE', 'MODELS_TOKEN contains spaces, line breaks or control characters inside the token', {
      hint: 'set MODELS_TOKEN to the token alone, e.g. MODELS_TOKEN="$(cat token.txt)"',
    });
  }
  return token;
}

/** MODELS_MIRRORS: comma-separated registry locations tried before the configured ones. */
export function envMirrors(env: NodeJS.ProcessEnv, baseDir: string): string[] {
  return (env.MODELS_MIRRORS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((m) => resolveRegistry(m, baseDir, 'MODELS_MIRRORS'));
}
