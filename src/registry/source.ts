/**
 * Where registry bytes come from: an http(s) base URL or a folder (plain path or file:// URL).
 * A source knows nothing of retries, mirrors or hashes; it opens `models.json` and `data/<hash>`,
 * optionally from a byte offset (Range + If-Range over HTTP).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelsError, isModelsError } from '../util/errors.js';
import { HASH_READ_SIZE } from '../util/hash.js';
import { type HttpClient, type HttpResponse, redact, statusError } from '../net/http.js';

export interface OpenOptions {
  /** Resume from this byte offset. */
  start?: number;
  /**
   * Ask for bytes start..end (inclusive) only: one part of a large object fetched as several
   * concurrent ranges. The answer is `resumed` only when the server honoured the range (206).
   */
  end?: number;
  /** The validator (ETag or Last-Modified) recorded when the earlier bytes were fetched. */
  validator?: string;
  signal?: AbortSignal;
}

export interface OpenedBody {
  /** True when the body starts at `start` (206); false when it starts at byte 0. */
  resumed: boolean;
  validator?: string;
  /** Declared length of the body, when the source says. */
  length?: number;
  url: string;
  body: AsyncIterable<Uint8Array>;
  destroy(): void;
}

export interface RegistrySource {
  /** Display form (no credentials). */
  readonly location: string;
  readonly remote: boolean;
  /** `undefined` when the source does not have the object (404 / ENOENT). */
  open(relPath: string, options?: OpenOptions): Promise<OpenedBody | undefined>;
}

export class FolderSource implements RegistrySource {
  readonly remote = false;
  readonly location: string;
  private readonly dir: string;

  constructor(location: string) {
    this.dir = location.startsWith('file:') ? fileURLToPath(location) : location;
    this.location = this.dir;
  }

  /** A missing object is a 404; a missing registry folder is a configuration error (exit 2). */
  private async assertExists(): Promise<void> {
    const isDir = await stat(this.dir).then((info) => info.isDirectory(), () => false);
    if (!isDir) {
      throw new ModelsError('E_CONFIG', `registry folder ${this.dir} does not exist`, {
        hint: 'check `registry:` (or the mirror) in models.yaml: a plain path is relative to the folder of models.yaml',
      });
    }
  }

  async open(relPath: string, options: OpenOptions = {}): Promise<OpenedBody | undefined> {
    const path = join(this.dir, relPath);
    let info;
    try {
      info = await stat(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        await this.assertExists();
        return undefined;
      }
      throw new ModelsError('E_STORAGE', `cannot read ${path}: ${(error as Error).message}`, { hint: 'check the registry folder permissions' });
    }
    return info.isFile() ? openLocalFile(path, info.size, info.mtimeMs, options) : undefined;
  }
}

/** A local file's bytes: a range (`end`), or from `start` when the validator (size and mtime) still holds, else from 0. */
function openLocalFile(path: string, size: number, mtimeMs: number, options: OpenOptions): OpenedBody {
  const validator = `${size}-${mtimeMs}`;
  const ranged = options.end !== undefined && (options.validator === undefined || options.validator === validator) && (options.start ?? 0) <= options.end && options.end < size;
  const resume = ranged || (options.start !== undefined && options.start > 0 && options.validator === validator && options.start <= size);
  const start = resume ? (options.start as number) ?? 0 : 0;
  const end = ranged ? (options.end as number) : size - 1;
  const stream = createReadStream(path, { start, end: Math.max(start, end), highWaterMark: HASH_READ_SIZE });
  return { resumed: resume, validator, length: size === 0 ? 0 : end - start + 1, url: path, body: stream, destroy: () => stream.destroy() };
}

/**
 * Objects in local files kept by another tool (a Hugging Face cache): `data/<sha256>` maps to
 * candidate paths, and the first that exists and that `accept` approves (e.g. after hashing it)
 * serves. Only read, never written; not remote, so it serves under --offline too.
 */
export class LocalFileTableSource implements RegistrySource {
  readonly remote = false;

  constructor(
    readonly location: string,
    private readonly paths: ReadonlyMap<string, readonly string[]>,
    private readonly accept: (path: string, relPath: string) => Promise<boolean> = () => Promise.resolve(true),
  ) {}

  async open(relPath: string, options: OpenOptions = {}): Promise<OpenedBody | undefined> {
    for (const path of this.paths.get(relPath) ?? []) {
      const info = await stat(path).catch(() => undefined);
      if (!info?.isFile() || !(await this.accept(path, relPath).catch(() => false))) continue;
      return openLocalFile(path, info.size, info.mtimeMs, options);
    }
    return undefined;
  }
}

export class HttpSource implements RegistrySource {
  readonly remote = true;
  readonly location: string;

  constructor(
    private readonly base: string,
    private readonly http: HttpClient,
  ) {
    this.location = redact(new URL(base));
  }

  open(relPath: string, options: OpenOptions = {}): Promise<OpenedBody | undefined> {
    return openUrl(this.http, `${this.base.replace(/\/+$/, '')}/${relPath}`, options);
  }
}

/** Credentials a source sends to its own origin only (Hub token, OCI Basic or Bearer). */
export interface SourceAuth {
  /** The Authorization header for the first origin, fetched afresh when a token expires. */
  authorization(signal?: AbortSignal): Promise<string | undefined>;
  /**
   * An answer 401 to a request sent with `sent` (its Authorization, if any): forget the credentials
   * (an expired token); true when retrying may help.
   */
  refused?(challenge: string | undefined, sent?: string): Promise<boolean>;
  /** What to tell the user on a refusal. */
  hint: string;
  /** A 401/403 in the source's own words (the Hub's X-Error-Code), or undefined for the plain message. */
  explain?(status: number, headers: HttpResponse['headers'], url: string): ModelsError | undefined;
}

/**
 * Objects at URLs of their own (a `url:` file, the Hub's resolve URLs, OCI blobs): `data/<sha256>`
 * maps to the URL that serves those bytes. The fetch engine sees one more registry source.
 */
export class UrlTableSource implements RegistrySource {
  readonly remote = true;
  /**
   * Where each URL last redirected to (the Hub's or a release's file host, often a presigned URL):
   * the later ranges of a large object go there directly, with no credentials (as after any
   * redirect that leaves the origin), instead of asking for the redirect again per range. A refusal
   * there (an expired signature) goes back to the URL itself.
   */
  private readonly redirected = new Map<string, string>();

  constructor(
    readonly location: string,
    private readonly urls: ReadonlyMap<string, string>,
    private readonly http: HttpClient,
    private readonly auth?: SourceAuth,
  ) {}

  async open(relPath: string, options: OpenOptions = {}): Promise<OpenedBody | undefined> {
    const url = this.urls.get(relPath);
    if (!url) return undefined;
    const direct = this.redirected.get(url);
    if (direct) {
      const opened = await openUrl(this.http, direct, options, undefined, true).catch((error: unknown) => {
        if (isModelsError(error) && (error.code === 'E_AUTH' || error.code === 'E_HTTP')) return undefined;
        throw error;
      });
      if (opened) return opened;
      this.redirected.delete(url);
    }
    const opened = await openUrl(this.http, url, options, this.auth, true);
    // Only a redirect that left the origin: one within it may still need the credentials.
    if (opened && new URL(opened.url).origin !== new URL(url).origin) this.redirected.set(url, opened.url);
    return opened;
  }
}

/** GET a URL from `start` (Range + If-Range when a validator is known); undefined on 404. */
/** `anonymous`: never MODELS_TOKEN (objects at URLs of their own, not an XPRIM registry). */
export async function openUrl(http: HttpClient, url: string, options: OpenOptions = {}, auth?: SourceAuth, anonymous = false): Promise<OpenedBody | undefined> {
  const headers: Record<string, string> = {};
  const start = options.start ?? 0;
  if (options.end !== undefined) {
    headers.range = `bytes=${start}-${options.end}`;
    if (options.validator) headers['if-range'] = options.validator;
  } else if (start > 0 && options.validator) {
    headers.range = `bytes=${start}-`;
    headers['if-range'] = options.validator;
  }
  let { response, sent } = await authorizedGet(http, url, headers, options.signal, auth, anonymous);
  if (response.status === 401 && auth?.refused && (await auth.refused(header(response.headers['www-authenticate']), sent))) {
    await drain(response.body);
    ({ response, sent } = await authorizedGet(http, url, headers, options.signal, auth, anonymous));
  }
  if (response.status === 401 || response.status === 403) {
    await drain(response.body);
    throw auth?.explain?.(response.status, response.headers, response.url) ?? statusError(response.status, response.url, auth?.hint);
  }
  if (response.status === 404) {
    await drain(response.body);
    return undefined;
  }
  if (response.status === 416 && options.end === undefined) {
    // Our recorded offset is past the end: the object changed. Start over without a range.
    await drain(response.body);
    return openUrl(http, url, { ...(options.signal ? { signal: options.signal } : {}) }, auth, anonymous);
  }
  return openedFrom(response, start);
}

async function authorizedGet(http: HttpClient, url: string, headers: Record<string, string>, signal: AbortSignal | undefined, auth: SourceAuth | undefined, anonymous: boolean): Promise<{ response: HttpResponse; sent: string | undefined }> {
  const authorization = await auth?.authorization(signal);
  const response = await http.request(url, {
    headers,
    anonymous: auth !== undefined || anonymous,
    ...(signal ? { signal } : {}),
    ...(authorization ? { authorization } : {}),
    ...(auth ? { passStatuses: [401, 403], authHint: auth.hint } : {}),
  });
  return { response, sent: authorization };
}

async function openedFrom(response: HttpResponse, start: number): Promise<OpenedBody> {
  const etag = header(response.headers.etag);
  const validator = etag && !etag.startsWith('W/') ? etag : header(response.headers['last-modified']);
  let resumed = false;
  if (response.status === 206) {
    const range = /^bytes (\d+)-/.exec(header(response.headers['content-range']) ?? '');
    if (!range || Number(range[1]) !== start) {
      await drain(response.body);
      throw new ModelsError('E_HTTP', `unexpected Content-Range from ${response.url}`, { hint: 'the server mishandles Range requests' });
    }
    resumed = true;
  } else if (response.status !== 200) {
    await drain(response.body);
    throw new ModelsError('E_HTTP', `unexpected HTTP ${response.status} from ${response.url}`, { hint: 'check the URL' });
  }
  const lengthHeader = header(response.headers['content-length']);
  return {
    resumed,
    ...(validator ? { validator } : {}),
    ...(lengthHeader && /^\d+$/.test(lengthHeader) ? { length: Number(lengthHeader) } : {}),
    url: response.url,
    body: response.body,
    destroy: () => {
      // An unread body destroyed without an error listener would crash the process with an 'error' event.
      (response.body as unknown as NodeJS.EventEmitter).on?.('error', () => undefined);
      response.body.destroy();
    },
  };
}

export function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
  try {
    for await (const _ of body) {
      // discard
    }
  } catch {
    // a broken body we are discarding anyway
  }
}

export function createSource(location: string, http: HttpClient): RegistrySource {
  return /^https?:\/\//.test(location) ? new HttpSource(location, http) : new FolderSource(location);
}
