/**
 * Pushing to an OCI registry (distribution-spec "Pushing blobs" / "Pushing manifests"), as
 * distribution 2.8 really behaves: `HEAD` a blob first (skip what the registry has); else `POST
 * /blobs/uploads/` (202 + Location), a `PATCH` per chunk with `Content-Range: <start>-<end>`, each
 * answered by a NEW Location that the next request must use, then `PUT <location>&digest=…`. The
 * single-request upload is not used (Debian's registry ignores a body sent with the POST). A blob
 * another repository of the registry holds is mounted instead (`POST ?mount=&from=`). A failed
 * upload starts over from the POST; credentials go only to the registry's own origin.
 */
import { type FileHandle, open } from 'node:fs/promises';
import type { Session } from '../project/session.js';
import { uploadChunkFrom } from '../project/settings.js';
import type { HttpResponse } from '../net/http.js';
import { drain, header, type SourceAuth } from '../registry/source.js';
import { authFor } from '../sources/oci/auth.js';
import { registryErrorText, registryRequest, withRetries } from '../sources/oci/http.js';
import { MEDIA } from '../sources/oci/media-types.js';
import { type OciReference, blobUrl, describeReference, manifestUrl } from '../sources/oci/reference.js';
import { ModelsError, storageError } from '../util/errors.js';
import { debugLog } from '../util/log.js';


export interface Blob {
  digest: string;
  size: number;
  /** Where its bytes are read from; or the bytes themselves. */
  path?: string;
  bytes?: Buffer;
}

export class OciUploader {
  private readonly auth: SourceAuth;
  private readonly anonymous: SourceAuth = { authorization: () => Promise.resolve(undefined), hint: '' };
  /** Bytes sent in blob bodies (not counting skipped blobs). */
  bytesUploaded = 0;
  /** Bytes per PATCH (MODELS_UPLOAD_CHUNK, default 32 MiB: a 1 GiB layer takes 32 requests, each held in memory). */
  private readonly chunk: number;

  constructor(
    private readonly session: Session,
    private readonly ref: OciReference,
    private readonly signal?: AbortSignal,
  ) {
    this.auth = authFor(session, ref.host).forScope(`repository:${ref.repository}:pull,push`);
    this.chunk = uploadChunkFrom(session.env);
  }

  private request(url: string, options: Parameters<typeof registryRequest>[3] = {}): Promise<HttpResponse> {
    // An upload Location on another origin (a storage backend) gets no registry credentials.
    const own = new URL(url).origin === new URL(this.ref.base).origin;
    return registryRequest(this.session, own ? this.auth : { ...this.anonymous, hint: this.auth.hint }, url, { ...options, ...(this.signal ? { signal: this.signal } : {}) });
  }

  private async refuse(response: HttpResponse, what: string): Promise<never> {
    const detail = await registryErrorText(response);
    throw new ModelsError('E_HTTP', `${what}: HTTP ${response.status} from ${response.url}${detail ? ` (${detail})` : ''}`, { hint: 'check the reference and that your credentials may push to it' });
  }

  async hasBlob(digest: string): Promise<boolean> {
    return withRetries(this.session, `HEAD blob ${digest.slice(0, 19)}`, this.ref.base, async () => {
      const response = await this.request(blobUrl(this.ref, digest), { method: 'HEAD' });
      await drain(response.body);
      return response.status === 200;
    }, this.signal);
  }

  /**
   * Put a blob in the repository unless it has it: mounted from `from` (another repository of this
   * registry) when given and the registry agrees, else uploaded. A mount the registry declines with
   * 202 has started the upload, which goes on from there; a refused one (401, 403, an error) falls
   * back to a plain upload, so a stale or unreadable `from` costs one request, never the publish.
   */
  async pushBlob(blob: Blob, from?: string): Promise<'present' | 'mounted' | 'uploaded'> {
    if (await this.hasBlob(blob.digest)) return 'present';
    const what = `upload of blob ${blob.digest.slice(0, 19)} to ${describeReference(this.ref)}`;
    return withRetries(this.session, what, this.ref.base, async () => {
      const started = from && from !== this.ref.repository ? await this.mount(blob, from) : undefined;
      if (started === 'mounted') return 'mounted';
      await this.upload(blob, started);
      return 'uploaded';
    }, this.signal);
  }

  /** `POST ?mount=&from=` (distribution-spec "Mounting a blob from another repository"): 'mounted', or the upload it started, or undefined. */
  private async mount(blob: Blob, from: string): Promise<'mounted' | HttpResponse | undefined> {
    const url = new URL(`${this.ref.base}/v2/${this.ref.repository}/blobs/uploads/`);
    url.searchParams.set('mount', blob.digest);
    url.searchParams.set('from', from);
    // The token must also allow pulling from the other repository, as ORAS asks it.
    const auth = authFor(this.session, this.ref.host).forScope(`repository:${this.ref.repository}:pull,push repository:${from}:pull`);
    const response = await registryRequest(this.session, auth, url.href, { method: 'POST', body: Buffer.alloc(0), pass: [400, 401, 403, 404, 405], ...(this.signal ? { signal: this.signal } : {}) });
    if (response.status === 202) return response;
    await drain(response.body);
    if (response.status !== 201) {
      debugLog(`mount of ${blob.digest.slice(0, 19)} from ${from}: HTTP ${response.status}; uploading instead`);
      return undefined;
    }
    const stated = header(response.headers['docker-content-digest']);
    if (stated && stated !== blob.digest) throw new ModelsError('E_HTTP', `mount of ${blob.digest} from ${from}: the registry says it mounted ${stated}`, { hint: 'the registry does not follow the distribution spec: tell its owner' });
    return 'mounted';
  }

  private location(response: HttpResponse, what: string): string {
    const location = header(response.headers.location);
    if (!location) throw new ModelsError('E_HTTP', `${what}: the registry answered ${response.status} without a Location`, { hint: 'the registry does not follow the distribution spec: tell its owner' });
    return new URL(location, response.url).href;
  }

  /** POST (unless `started`, a 202 that already opened the upload), a PATCH per chunk, PUT ?digest=. */
  private async upload(blob: Blob, started?: HttpResponse): Promise<void> {
    const what = `upload of ${blob.digest.slice(0, 19)}`;
    const start = started ?? (await this.request(`${this.ref.base}/v2/${this.ref.repository}/blobs/uploads/`, { method: 'POST', body: Buffer.alloc(0), pass: [400, 404, 405] }));
    if (start.status !== 202) await this.refuse(start, what);
    await drain(start.body);
    let location = this.location(start, what);
    const handle: FileHandle | undefined = blob.path ? await open(blob.path, 'r').catch((error: unknown) => { throw storageError(error, 'read', blob.path as string); }) : undefined;
    let sent = 0;
    try {
      for (let offset = 0; offset < blob.size; offset += this.chunk) {
        const length = Math.min(this.chunk, blob.size - offset);
        const body = handle ? await readChunk(handle, offset, length, blob.path as string) : (blob.bytes as Buffer).subarray(offset, offset + length);
        const patch = await this.request(location, {
          method: 'PATCH',
          body,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + length - 1}` },
          pass: [400, 404, 416],
        });
        if (patch.status !== 202) await this.refuse(patch, what);
        await drain(patch.body);
        location = this.location(patch, what);
        sent += length;
      }
    } finally {
      await handle?.close();
    }
    const put = new URL(location);
    put.searchParams.set('digest', blob.digest);
    const done = await this.request(put.href, { method: 'PUT', body: Buffer.alloc(0), pass: [400, 404] });
    if (done.status !== 201) await this.refuse(done, what);
    await drain(done.body);
    this.bytesUploaded += sent;
  }

  /** The digest the tag points at now, or undefined (no such tag). */
  async tagDigest(tag: string): Promise<string | undefined> {
    const answer = await withRetries(this.session, `HEAD ${describeReference(this.ref)}`, this.ref.base, async () => {
      const response = await this.request(manifestUrl(this.ref, tag), { method: 'HEAD', headers: { accept: MEDIA.ociManifest } });
      await drain(response.body);
      return { digest: response.status === 200 ? header(response.headers['docker-content-digest']) : undefined };
    }, this.signal);
    return answer.digest;
  }

  async putManifest(tag: string, bytes: Buffer, mediaType: string): Promise<void> {
    await withRetries(this.session, `push of ${describeReference(this.ref)}`, this.ref.base, async () => {
      const response = await this.request(manifestUrl(this.ref, tag), { method: 'PUT', body: bytes, headers: { 'content-type': mediaType }, pass: [400, 404] });
      if (response.status !== 201) await this.refuse(response, `push of the manifest ${describeReference(this.ref)}`);
      await drain(response.body);
    }, this.signal);
  }
}

async function readChunk(handle: FileHandle, offset: number, length: number, path: string): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, offset + done).catch((error: unknown) => {
      throw storageError(error, 'read', path);
    });
    if (bytesRead === 0) throw new ModelsError('E_STORAGE', `${path} became shorter while it was published`, { hint: 'do not change the folder while publishing it' });
    done += bytesRead;
  }
  return buffer;
}
