/**
 * What one command run shares: its settings (read and checked by settings.ts), one HTTP client
 * (keep-alive pool), one registry client per registry, and the store.
 */
import type { ModelEntry, ProjectConfig } from './config.js';
import { concurrencyFrom, envMirrors, envToken, headersTimeoutFrom, idleTimeoutFrom, lowSpeedFrom, retryFromEnv } from './settings.js';
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
