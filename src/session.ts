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
    const tokenOrigins = new Set<string>();
    for (const location of this.allLocations()) {
      if (/^https?:/.test(location)) tokenOrigins.add(new URL(location).origin);
    }
    this.http = new HttpClient({
      ...(this.env.MODELS_TOKEN ? { token: this.env.MODELS_TOKEN } : {}),
      tokenOrigins,
      connections: this.concurrency,
      idleTimeoutMs: options.idleTimeoutMs ?? (this.env.MODELS_IDLE_TIMEOUT ? Number(this.env.MODELS_IDLE_TIMEOUT) * 1000 : 30_000),
    });
  }

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
        ...(this.options.retry ? { retry: this.options.retry } : {}),
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
