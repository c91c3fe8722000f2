/**
 * Download one object whose hash is not known yet (a `url:` pinned on first use) into a file,
 * then hash it (read back once: a resumed transfer has no running hash to continue). Retries and resumes (Range + If-Range) as the chunk engine does; the
 * caller checks or records the hash. Nothing is held in memory beyond one read.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { ModelsError, isModelsError, storageError } from '../util/errors.js';
import { sha256File } from '../util/hash.js';
import { TransientError, describeNetworkError } from '../net/http.js';
import type { RegistryClient } from '../registry/client.js';
import type { ByteSource } from './fetch.js';

export interface Downloaded {
  sha256: string;
  size: number;
  /** The server's validator (strong ETag, else Last-Modified), when it sent one. */
  validator?: string;
}

export interface DownloadOptions {
  signal?: AbortSignal | undefined;
  /** Refuse a body larger than this (the archive bomb bound applies later). */
  maxBytes: number;
  onBytes?: (bytes: number, source: ByteSource) => void;
}

/** Fetch `relPath` from the client's sources into `dest` (truncated first). */
export async function downloadToFile(client: RegistryClient, relPath: string, dest: string, what: string, options: DownloadOptions): Promise<Downloaded> {
  let handle: FileHandle;
  try {
    handle = await open(dest, 'w', 0o644);
  } catch (error) {
    throw storageError(error, 'create', dest);
  }
  let position = 0;
  let validator: string | undefined;
  try {
    await client.request(
      what,
      async (source) => {
        const opened = await source.open(relPath, { ...(position > 0 && validator ? { start: position, validator } : {}), ...(options.signal ? { signal: options.signal } : {}) });
        if (!opened) return undefined;
        if (!opened.resumed) {
          position = 0;
          await handle.truncate(0);
        }
        validator = opened.validator;
        const before = position;
        try {
          for await (const part of opened.body) {
            if (position + part.byteLength > options.maxBytes) {
              opened.destroy();
              throw new ModelsError('E_INTEGRITY', `${what}: ${opened.url} is larger than the ${options.maxBytes} bytes allowed`, { hint: 'check the URL: it serves something far bigger than a model file' });
            }
            await handle.write(part, 0, part.byteLength, position);
            position += part.byteLength;
            options.onBytes?.(part.byteLength, 'network');
          }
        } catch (error) {
          opened.destroy();
          if (isModelsError(error) || options.signal?.aborted) throw error;
          const failure = new TransientError(`${describeNetworkError(error)} after ${position - before} bytes`, opened.url);
          failure.progressed = position > before && validator !== undefined;
          throw failure;
        }
        if (opened.length !== undefined && position - before !== opened.length) {
          throw new TransientError(`body ended after ${position - before} of ${opened.length} bytes`, opened.url);
        }
        return true;
      },
      options.signal,
      relPath,
    );
  } finally {
    await handle.close().catch(() => undefined);
  }
  return { sha256: await sha256File(dest), size: position, ...(validator ? { validator } : {}) };
}
