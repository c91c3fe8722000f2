/**
 * HTTP transport: one keep-alive undici dispatcher per run (honouring HTTP(S)_PROXY / NO_PROXY),
 * manual redirects so that the bearer token never crosses to another origin, idle (not total)
 * body timeouts, and a classification of every failure into "retry" or "give up".
 */
import type { Dispatcher } from 'undici';
import { ModelsError } from '../util/errors.js';
import { isLoopbackHost } from '../util/urls.js';
import { debugLog, logUrl } from '../util/log.js';
import { BODY_HIGH_WATER, type LowSpeed, LowSpeedError, guardBody } from './http-body.js';

export { type LowSpeed, LowSpeedError } from './http-body.js';

export interface HttpOptions {
  /** Bearer token (MODELS_TOKEN); sent only to `tokenOrigins`. */
  token?: string;
  tokenOrigins?: Iterable<string>;
  /** Max sockets per origin; sized to the download concurrency. */
  connections?: number;
  /** Abandon a response whose body sends nothing for this long (ms). */
  idleTimeoutMs?: number;
  /** Abandon a request whose headers do not arrive within this long (ms). */
  headersTimeoutMs?: number;
  /** Abandon a body slower than `bytesPerSecond` over `windowMs` (curl's --speed-limit/--speed-time); 0 turns it off. */
  lowSpeed?: LowSpeed;
  userAgent?: string;
}

export interface HttpResponse {
  status: number;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Uint8Array> & { destroy(error?: Error): unknown };
}

/** A failure worth trying again: connection errors, resets, timeouts, 408/429/5xx. */
export class TransientError extends Error {
  /** Bytes were kept from this attempt (a resumable transfer moved on): the retry budget starts again. */
  progressed = false;
  constructor(
    message: string,
    readonly url: string,
    readonly retryAfterMs?: number,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'TransientError';
  }
}

export { isLoopbackHost };

const MAX_REDIRECTS = 5;
const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/** Parse Retry-After: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * When a 429 without Retry-After says its window resets: the IETF RateLimit header the Hugging Face
 * Hub sends (`"api";r=0;t=7`), or the older `RateLimit-Reset: 7` (seconds).
 */
export function parseRateLimitReset(headers: Record<string, string | string[] | undefined>): number | undefined {
  const text = [headers.ratelimit, headers['ratelimit-reset']].flat().filter((v): v is string => typeof v === 'string').join(';');
  const match = /(?:^|[;,\s])t=(\d+)/.exec(text) ?? /^\s*(\d+)\s*$/.exec(String(headers['ratelimit-reset'] ?? ''));
  return match ? Number(match[1]) * 1000 : undefined;
}

/** Describe a low-level error for a one-line message. */
export function describeNetworkError(error: unknown): string {
  const err = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err?.code ?? err?.cause?.code;
  const message = err?.cause?.message ?? err?.message ?? String(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

export function isTransientNetworkError(error: unknown): boolean {
  if (error instanceof TransientError || error instanceof LowSpeedError) return true;
  const err = error as { code?: string; cause?: { code?: string }; name?: string };
  const code = err?.code ?? err?.cause?.code;
  return (code !== undefined && TRANSIENT_CODES.has(code)) || err?.name === 'SocketError';
}

export interface RequestOptions {
  /** POST, PUT and PATCH (OCI uploads) send `body` and never follow a redirect. */
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH';
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  signal?: AbortSignal;
  /** A source's own Authorization header (Hub token, OCI Basic or Bearer): first origin only. */
  authorization?: string;
  /** Never send the configured MODELS_TOKEN (it is for XPRIM registries, not url:, hf: or oci: hosts). */
  anonymous?: boolean;
  /** 4xx statuses returned to the caller rather than thrown. */
  passStatuses?: number[];
  /** Return a 3xx as is (the Hub's X-Linked-Etag is on the redirect). */
  manualRedirect?: boolean;
  /** What to say on 401/403: which credentials this origin needs. */
  authHint?: string;
}

/** A 4xx that retrying will not fix: 401/403 are authentication (exit 9), the rest a refusal (exit 5). */
export function statusError(status: number, url: string, authHint?: string): ModelsError {
  if (status === 401 || status === 403) {
    return new ModelsError('E_AUTH', `HTTP ${status} from ${url}: ${status === 401 ? 'credentials missing or refused' : 'access denied'}`, {
      hint: authHint ?? 'the registry needs credentials: set MODELS_TOKEN',
    });
  }
  return new ModelsError('E_HTTP', `HTTP ${status} from ${url}`, { hint: 'check the URL and that it serves what models.yaml says' });
}

export class HttpClient {
  private dispatcher: Dispatcher | undefined;
  private readonly tokenOrigins: Set<string>;

  constructor(private readonly options: HttpOptions = {}) {
    this.tokenOrigins = new Set(options.tokenOrigins ?? []);
  }

  private async getDispatcher(): Promise<Dispatcher> {
    if (!this.dispatcher) {
      const { EnvHttpProxyAgent } = await loadUndici();
      this.dispatcher = new EnvHttpProxyAgent({
        connections: this.options.connections ?? 8,
        bodyTimeout: this.options.idleTimeoutMs ?? 30_000,
        headersTimeout: this.options.headersTimeoutMs ?? 30_000,
        keepAliveTimeout: 10_000,
      });
    }
    return this.dispatcher;
  }

  /**
   * GET a URL. Returns 2xx/3xx-resolved responses and 404/416 (the caller decides); throws
   * TransientError for what is worth retrying, ModelsError for what is not.
   */
  get(url: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<HttpResponse> {
    return this.request(url, { headers, ...(signal ? { signal } : {}) });
  }

  /**
   * One request, following redirects by hand. `authorization` (a source's own credentials) and the
   * configured token go only to the first origin: never after a redirect has left it. With
   * `passStatuses`, those 4xx answers are returned instead of thrown (an OCI 401 carries its challenge).
   */
  async request(url: string, options: RequestOptions = {}): Promise<HttpResponse> {
    const { request } = await loadUndici();
    const dispatcher = await this.getDispatcher();
    const method = options.method ?? 'GET';
    let current = new URL(url);
    const startOrigin = current.origin;
    for (let hop = 0; ; hop++) {
      const started = performance.now();
      const response = await send(request, dispatcher, current, method, this.headersFor(current, startOrigin, options), options, started);
      const status = response.statusCode;
      if (status >= 300) debugLog(`${method} ${logUrl(current)} → ${status}${response.headers.location ? ` (to ${logUrl(String(response.headers.location), current)})` : ''} in ${took(started)}`);
      const follows = !options.manualRedirect && (method === 'GET' || method === 'HEAD');
      if (status >= 300 && status < 400 && status !== 304 && response.headers.location && follows) {
        await response.body.dump().catch(() => undefined);
        if (hop >= MAX_REDIRECTS) {
          throw new ModelsError('E_HTTP', `too many redirects from ${redact(new URL(url))}`, { hint: 'check the URL' });
        }
        current = redirectTarget(current, String(response.headers.location));
        continue;
      }
      await throwOnFailedStatus(response, current, options);
      return this.answer(response, current, method, options, started);
    }
  }

  /** The token (or the source's own authorization) goes to the first origin only, never after a redirect left it. */
  private headersFor(current: URL, startOrigin: string, options: RequestOptions): Record<string, string> {
    const sendHeaders: Record<string, string> = { 'user-agent': this.options.userAgent ?? 'xprim-models', ...(options.headers ?? {}) };
    if (current.origin === startOrigin) {
      if (options.authorization) sendHeaders.authorization = options.authorization;
      else if (this.options.token && !options.anonymous && this.tokenOrigins.has(current.origin)) sendHeaders.authorization = `Bearer ${this.options.token}`;
    }
    return sendHeaders;
  }

  /** A response to hand on: its body guarded (idle and low-speed limits, the declared length), logged when done. */
  private answer(response: Dispatcher.ResponseData, current: URL, method: string, options: RequestOptions, started: number): HttpResponse {
    const status = response.statusCode;
    const length = Number(response.headers['content-length']);
    const logged = logUrl(current);
    const range = options.headers?.range ? ` (${options.headers.range})` : '';
    const body = guardBody(response.body, {
      length: Number.isSafeInteger(length) && method !== 'HEAD' ? length : undefined,
      lowSpeed: this.options.lowSpeed,
      url: redact(current),
      onDone: (bytes, complete) => debugLog(`${method} ${logged}${range} → ${status}, ${bytes} bytes${complete ? '' : ' (cut short)'} in ${took(started)}`),
    });
    return { status, url: redact(current), headers: response.headers, body };
  }

  async close(): Promise<void> {
    const dispatcher = this.dispatcher;
    this.dispatcher = undefined;
    await dispatcher?.close().catch(() => undefined);
  }
}

/** One hop; a network failure is transient (unless the caller aborted). */
async function send(
  request: typeof import('undici').request,
  dispatcher: Dispatcher,
  current: URL,
  method: string,
  sendHeaders: Record<string, string>,
  options: RequestOptions,
  started: number,
): Promise<Dispatcher.ResponseData> {
  const { signal } = options;
  try {
    return await request(current, { method, headers: sendHeaders, dispatcher, signal: signal ?? null, highWaterMark: BODY_HIGH_WATER, ...(options.body !== undefined ? { body: options.body } : {}) });
  } catch (error) {
    const range = options.headers?.range;
    debugLog(`${method} ${logUrl(current)} ${range ? `(${range}) ` : ''}failed after ${took(started)}: ${describeNetworkError(error)}`);
    if (signal?.aborted) throw error;
    throw new TransientError(`${describeNetworkError(error)} (${method} ${redact(current)})`, redact(current));
  }
}

function took(started: number): string {
  return `${Math.round(performance.now() - started)} ms`;
}

/** Redirects stay on https (plain http only to loopback). */
function redirectTarget(current: URL, location: string): URL {
  const next = new URL(location, current);
  if (next.protocol !== 'https:' && !(next.protocol === 'http:' && isLoopbackHost(next.hostname))) {
    throw new ModelsError('E_HTTP', `refusing redirect from ${redact(current)} to ${redact(next)}`, {
      hint: 'downloads must use https (plain http only on loopback)',
    });
  }
  return next;
}

/** 408, 429 and 5xx are worth retrying (after Retry-After, if given); other 4xx are final, except 404, 416 and `passStatuses`. */
async function throwOnFailedStatus(response: Dispatcher.ResponseData, current: URL, options: RequestOptions): Promise<void> {
  const status = response.statusCode;
  if (status === 408 || status === 429 || status >= 500) {
    await response.body.dump().catch(() => undefined);
    const wait = parseRetryAfter(response.headers['retry-after']) ?? (status === 429 ? parseRateLimitReset(response.headers) : undefined);
    throw new TransientError(`HTTP ${status} from ${redact(current)}`, redact(current), wait, status);
  }
  if (status >= 400 && status !== 404 && status !== 416 && !options.passStatuses?.includes(status)) {
    await response.body.dump().catch(() => undefined);
    throw statusError(status, redact(current), options.authHint);
  }
}

/** A URL without credentials or query secrets, for messages. */
export function redact(url: URL): string {
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}

/**
 * undici, loaded on first use (commands that need no network never pay for it). Through its default
 * export: undici is CommonJS, and in the bundled CLI (scripts/bundle-cli.mjs) a dynamically imported
 * CommonJS module has no named exports.
 */
async function loadUndici(): Promise<typeof import('undici')> {
  const mod = await import('undici');
  return (mod as unknown as { default: typeof mod }).default;
}
