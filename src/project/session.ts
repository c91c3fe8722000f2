/**
 * What one command run shares: the options read from flags and environment, one HTTP client
 * (keep-alive pool), one registry client per registry, and the store.
 */
import { resolveRegistry, type ModelEntry, type ProjectConfig } from './config.js';
import { ModelsError } from '../util/errors.js';
import { HttpClient } from '../net/http.js';
import { RegistryClient, type RetryPolicy } from '../registry/client.js';
import type { RegistrySource } from '../registry/source.js';
import { Store, defaultCacheDir } from '../store/store.js';

export interface SessionOptions {
  cacheDir?: string | undefined;
  offline?: boolean | undefined;
  concurrency?: number | undefined;
  retry?: Partial<RetryPolicy> | undefined;
  /** Idle time (ms) after which a stalled response is abandoned and retried. */
  idleTimeoutMs?: number | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** --platform (os-arch, Node's names): the platform an OCI index is narrowed for at lock. */
  platform?: string | undefined;
}

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

export class Session {
  readonly env: NodeJS.ProcessEnv;
  readonly concurrency: number;
  readonly store: Store;
  readonly http: HttpClient;
  private readonly clients = new Map<string, RegistryClient>();

  constructor(
    readonly config: ProjectConfig | undefined,
    readonly options: SessionOptions = {},
  ) {
    this.env = options.env ?? process.env;
    this.concurrency = concurrencyFrom(options.concurrency, this.env);
    this.store = new Store(options.cacheDir ?? defaultCacheDir(this.env));
    const token = envToken(this.env);
    const tokenOrigins = new Set<string>();
    for (const location of this.allLocations()) {
      if (/^https?:/.test(location)) tokenOrigins.add(new URL(location).origin);
    }
    this.http = new HttpClient({
      ...(token ? { token } : {}),
      tokenOrigins,
      connections: this.concurrency,
      idleTimeoutMs: options.idleTimeoutMs ?? idleTimeoutFrom(this.env),
      headersTimeoutMs: headersTimeoutFrom(this.env),
      lowSpeed: lowSpeedFrom(this.env),
    });
    this.retry = { ...retryFromEnv(this.env), ...options.retry };
  }

  private readonly retry: Partial<RetryPolicy>;

  private mirrorsFromEnv(): string[] {
    return envMirrors(this.env, this.config?.dir ?? process.cwd());
  }

  private allLocations(): string[] {
    return [...this.mirrorsFromEnv(), ...(this.config?.models.map((m) => m.registryUrl) ?? []), ...(this.config?.mirrors ?? [])];
  }

  /** The client for an entry's registry: MODELS_MIRRORS first, then the registry, then the configured mirrors. */
  clientFor(entry: Pick<ModelEntry, 'registryUrl'> | string): RegistryClient {
    const registryUrl = typeof entry === 'string' ? entry : entry.registryUrl;
    let client = this.clients.get(registryUrl);
    if (!client) {
      const locations = [...this.mirrorsFromEnv(), registryUrl, ...(this.config?.mirrors ?? [])];
      client = new RegistryClient(locations, {
        http: this.http,
        retry: this.retry,
        ...(this.options.offline ? { offline: true } : {}),
      });
      this.clients.set(registryUrl, client);
    }
    return client;
  }

  /**
   * A client over sources of the caller's own (objects at URLs: url:, hf:, oci:), with this run's
   * retries and --offline. MODELS_MIRRORS come first: a mirror holding `data/<sha256>` serves any
   * kind, since every object is verified by its hash (`models mirror` writes them).
   */
  clientOver(sources: RegistrySource[]): RegistryClient {
    return new RegistryClient([...this.mirrorsFromEnv(), ...sources], { http: this.http, retry: this.retry, ...(this.options.offline ? { offline: true } : {}) });
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}
