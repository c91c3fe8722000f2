/**
 * Where registry bytes come from: an http(s) base URL or a folder (plain path or file:// URL).
 * A source knows nothing of retries, mirrors or hashes; it opens `models.json` and `data/<hash>`,
 * optionally from a byte offset (Range + If-Range over HTTP).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelsError } from '../util/errors.js';
import { HttpClient, redact } from '../net/http.js';

export interface OpenOptions {
  /** Resume from this byte offset. */
  start?: number;
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
    if (!info.isFile()) return undefined;
    const validator = `${info.size}-${info.mtimeMs}`;
    const resume = options.start !== undefined && options.start > 0 && options.validator === validator && options.start <= info.size;
    const start = resume ? (options.start as number) : 0;
    const stream = createReadStream(path, { start, highWaterMark: 1 << 20 });
    return { resumed: resume, validator, length: info.size - start, url: path, body: stream, destroy: () => stream.destroy() };
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

  async open(relPath: string, options: OpenOptions = {}): Promise<OpenedBody | undefined> {
    const url = `${this.base.replace(/\/+$/, '')}/${relPath}`;
    const headers: Record<string, string> = {};
    const start = options.start ?? 0;
    if (start > 0 && options.validator) {
      headers.range = `bytes=${start}-`;
      headers['if-range'] = options.validator;
    }
    const response = await this.http.get(url, headers, options.signal);
    if (response.status === 404) {
      await drain(response.body);
      return undefined;
    }
    if (response.status === 416) {
      // Our recorded offset is past the end: the object changed. Start over without a range.
      await drain(response.body);
      return this.open(relPath, { ...(options.signal ? { signal: options.signal } : {}) });
    }
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
      throw new ModelsError('E_HTTP', `unexpected HTTP ${response.status} from ${response.url}`, { hint: 'check the registry URL' });
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
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
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
