/**
 * A registry as the rest of the program sees it: an ordered list of sources (MODELS_MIRRORS, the
 * registry, its mirrors) tried in order for each request, with exponential backoff and jitter between
 * rounds, Retry-After honoured, and a source that fails demoted for the rest of the run. Content is
 * verified by hash by the callers, so any source is as good as another.
 */
import { ModelsError, abortError, isModelsError } from '../util/errors.js';
import { debugLog } from '../util/log.js';
import { HttpClient, TransientError, describeNetworkError, isTransientNetworkError } from '../net/http.js';
import { type OpenedBody, type RegistrySource, createSource } from './source.js';

export interface RetryPolicy {
  /** Rounds over all sources before giving up on a request (the time budget usually ends it first). */
  attempts: number;
  /**
   * Time a request may keep failing before it gives up (MODELS_RETRY_BUDGET): counted from the
   * start of the first failed attempt, and restarted whenever an attempt made progress.
   */
  budgetMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** How many more times a chunk whose bytes do not match its hash is fetched. */
  integrityRetries: number;
}

export const defaultRetryPolicy: RetryPolicy = { attempts: 30, budgetMs: 60_000, baseDelayMs: 200, maxDelayMs: 10_000, integrityRetries: 2 };


export interface ClientOptions {
  http: HttpClient;
  retry?: Partial<RetryPolicy>;
  /** --offline: remote sources are never asked. */
  offline?: boolean;
  /** For error messages: which model needs this. */
  label?: string;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function backoffDelay(round: number, policy: RetryPolicy, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return retryAfterMs;
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** round);
  return Math.round(exp / 2 + Math.random() * (exp / 2)); // "equal jitter"
}

export class RegistryClient {
  readonly policy: RetryPolicy;
  private order: RegistrySource[];
  private readonly all: RegistrySource[];

  /** `locations`: registry URLs or folders, or ready sources (objects at URLs of their own). */
  constructor(
    locations: (string | RegistrySource)[],
    private readonly options: ClientOptions,
  ) {
    this.policy = { ...defaultRetryPolicy, ...options.retry };
    const unique = [...new Set(locations)];
    this.all = unique.map((location) => (typeof location === 'string' ? createSource(location, options.http) : location));
    this.order = this.all.filter((s) => !(options.offline && s.remote));
  }

  get locations(): string[] {
    return this.all.map((s) => s.location);
  }

  private demote(source: RegistrySource): void {
    if (this.order.length < 2) return;
    this.order = [...this.order.filter((s) => s !== source), source];
  }

  /**
   * Run `op` against the sources in order until one answers. `op` returns undefined when the
   * source does not have the object. Transient failures demote the source and move on; after a
   * full round without success, back off and go again.
   */
  async request<T>(what: string, op: (source: RegistrySource) => Promise<T | undefined>, signal?: AbortSignal, relPath?: string): Promise<T> {
    if (this.order.length === 0) {
      throw new ModelsError('E_OFFLINE', `${what}: not in the cache, and --offline allows no network request`, {
        hint: 'run once without --offline, or add a folder mirror (MODELS_MIRRORS=file:///path)',
      });
    }
    let lastError: unknown;
    // When the current failure streak started.
    let streakStart = Date.now();
    let round = 0;
    for (;;) {
      let notFound = 0;
      const sources = [...this.order];
      for (const source of sources) {
        if (signal?.aborted) throw abortError();
        try {
          const result = await op(source);
          if (result !== undefined) return result;
          notFound++;
        } catch (error) {
          if (signal?.aborted) throw abortError();
          if (isModelsError(error) || !isTransientNetworkError(error)) throw toModelsError(error, what);
          lastError = error;
          this.demote(source);
          // A transfer that kept bytes before failing made progress: its time budget starts again
          // (the attempt count still bounds a server that cuts every transfer short).
          if (error instanceof TransientError && error.progressed) streakStart = Date.now();
        }
      }
      if (notFound === sources.length) {
        const where = sources.map((s) => (relPath ? `${s.location.replace(/\/+$/, '')}/${relPath}` : s.location));
        throw new ModelsError('E_NOT_FOUND', `${what}: not found (404) at ${where.join(', ')}`, {
          hint: 'check the model name and version, or that the registry/mirror holds it',
        });
      }
      round++;
      const retryAfterMs = (lastError as TransientError).retryAfterMs;
      const delay = backoffDelay(round - 1, this.policy, retryAfterMs);
      if (retryAfterMs !== undefined && retryAfterMs > this.policy.budgetMs) {
        // Waiting a day is not a retry: say so now rather than hang.
        throw new ModelsError('E_NETWORK', `${what}: ${describeNetworkError(lastError)} asks to retry after ${formatSeconds(retryAfterMs)}, beyond the retry budget of ${formatSeconds(this.policy.budgetMs)}`, {
          hint: 'the registry is rate-limiting or down for maintenance: try again later, use a mirror (MODELS_MIRRORS), or raise MODELS_RETRY_BUDGET (seconds)',
          cause: lastError,
        });
      }
      const spent = Date.now() - streakStart;
      if (round >= this.policy.attempts || spent + delay > this.policy.budgetMs) {
        throw new ModelsError('E_NETWORK', `${what}: ${describeNetworkError(lastError)} (gave up after ${round} attempt${round === 1 ? '' : 's'} in ${formatSeconds(spent)})`, {
          hint: 'check the network or proxy settings (HTTPS_PROXY), add a mirror (MODELS_MIRRORS), or allow a longer outage with MODELS_RETRY_BUDGET (seconds)',
          cause: lastError,
        });
      }
      debugLog(`retry ${round} of ${what} in ${delay} ms (${formatSeconds(spent)} of the ${formatSeconds(this.policy.budgetMs)} budget spent): ${describeNetworkError(lastError)}`);
      await sleep(delay, signal);
    }
  }

  /** Fetch a small document (index, manifest) whole, refusing anything larger than maxBytes. */
  async fetchSmall(relPath: string, what: string, maxBytes: number, signal?: AbortSignal): Promise<{ bytes: Buffer; url: string }> {
    return this.request(
      what,
      async (source) => {
        const opened = await source.open(relPath, signal ? { signal } : {});
        if (!opened) return undefined;
        return { bytes: await readAll(opened, maxBytes, what), url: opened.url };
      },
      signal,
      relPath,
    );
  }
}

async function readAll(opened: OpenedBody, maxBytes: number, what: string): Promise<Buffer> {
  if (opened.length !== undefined && opened.length > maxBytes) {
    opened.destroy();
    throw new ModelsError('E_INDEX', `${what}: ${opened.url} is ${opened.length} bytes, more than the ${maxBytes} allowed`, {
      hint: 'the registry serves something that is not an XPRIM document',
    });
  }
  const parts: Buffer[] = [];
  let total = 0;
  for await (const part of opened.body) {
    total += part.byteLength;
    if (total > maxBytes) {
      opened.destroy();
      throw new ModelsError('E_INDEX', `${what}: ${opened.url} is larger than the ${maxBytes} bytes allowed`, {
        hint: 'the registry serves something that is not an XPRIM document',
      });
    }
    parts.push(Buffer.from(part));
  }
  if (opened.length !== undefined && total !== opened.length) {
    throw new TransientError(`${what}: body ended after ${total} of ${opened.length} bytes`, opened.url);
  }
  return Buffer.concat(parts);
}

function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

function toModelsError(error: unknown, what: string): ModelsError {
  if (isModelsError(error)) return error;
  return new ModelsError('E_NETWORK', `${what}: ${describeNetworkError(error)}`, { cause: error, hint: 'check the network and try again' });
}
