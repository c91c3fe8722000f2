/**
 * What one command run shares: the options read from flags and environment, one HTTP client
 * (keep-alive pool), one registry client per registry, and the store.
 */
import { resolveRegistry, type ModelEntry, type ProjectConfig } from './config.js';
import { ModelsError } from './errors.js';
import { HttpClient } from './http.js';
import { RegistryClient, type RetryPolicy } from './registry/client.js';
import { Store, defaultCacheDir } from './store.js';

export interface SessionOptions {
  cacheDir?: string | undefined;
  offline?: boolean | undefined;
  concurrency?: number | undefined;
  retry?: Partial<RetryPolicy> | undefined;
  /** Idle time (ms) after which a stalled response is abandoned and retried. */
  idleTimeoutMs?: number | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

export const DEFAULT_CONCURRENCY = 8;

export function concurrencyFrom(value: number | undefined, env: NodeJS.ProcessEnv): number {
  const raw = value ?? (env.MODELS_CONCURRENCY ? Number(env.MODELS_CONCURRENCY) : DEFAULT_CONCURRENCY);
  if (!Number.isInteger(raw) || raw < 1 || raw > 256) {
    throw new ModelsError('E_USAGE', `concurrency must be an integer from 1 to 256, got ${JSON.stringify(value ?? env.MODELS_CONCURRENCY)}`, {
      hint: 'pass --concurrency N or set MODELS_CONCURRENCY',
    });
  }
  return raw;
}

/** A numeric environment setting (MODELS_IDLE_TIMEOUT seconds, MODELS_RETRIES attempts, …), checked. */
export function envNumber(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback: number, integer = false): number {
  const text = env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const n = Number(text);
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

/** MODELS_RETRIES (rounds) and MODELS_RETRY_BUDGET (seconds a request may keep failing), when set. */
function retryFromEnv(env: NodeJS.ProcessEnv): Partial<RetryPolicy> {
  return {
    ...(env.MODELS_RETRIES?.trim() ? { attempts: envNumber(env, 'MODELS_RETRIES', 1, 100, 30, true) } : {}),
    ...(env.MODELS_RETRY_BUDGET?.trim() ? { budgetMs: envNumber(env, 'MODELS_RETRY_BUDGET', 0, 86_400, 60) * 1000 } : {}),
  };
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
      idleTimeoutMs: options.idleTimeoutMs ?? envNumber(this.env, 'MODELS_IDLE_TIMEOUT', 0.01, 3600, 30) * 1000,
      headersTimeoutMs: envNumber(this.env, 'MODELS_HEADERS_TIMEOUT', 0.01, 3600, 20) * 1000,
      lowSpeed: {
        bytesPerSecond: envNumber(this.env, 'MODELS_SPEED_LIMIT', 0, 1 << 30, 1024),
        windowMs: envNumber(this.env, 'MODELS_SPEED_TIME', 0.01, 3600, 30) * 1000,
      },
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

  async close(): Promise<void> {
    await this.http.close();
  }
}
