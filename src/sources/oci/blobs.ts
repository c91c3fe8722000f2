/**
 * Blobs: `GET /v2/<name>/blobs/sha256:<hex>` through the shared fetch engine. The engine asks for
 * `data/<hex>`; a UrlTableSource maps it to the blob URL with the registry's auth (sent to the
 * registry only: never after a redirect to a blob store or CDN). Small blobs (a KitOps Kitfile) are
 * read whole and kept in the store; tar layers are downloaded into the store to be listed.
 */
import { lstat, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Session } from '../../project/session.js';
import type { RegistryClient } from '../../registry/client.js';
import { UrlTableSource } from '../../registry/source.js';
import type { Store } from '../../store/store.js';
import { downloadToFile } from '../../fetch/download.js';
import { ModelsError } from '../../util/errors.js';
import { sha256 } from '../../util/hash.js';
import { authFor } from './auth.js';
import { pullScope } from './manifest-fetch.js';
import { type OciReference, blobUrl } from './reference.js';

/** A client whose `data/<hex>` are the blobs `digests` of the reference's repository. */
export function blobClient(session: Session, ref: OciReference, digests: Iterable<string>): RegistryClient {
  const urls = new Map<string, string>();
  for (const digest of digests) urls.set(`data/${digest.slice('sha256:'.length)}`, blobUrl(ref, digest));
  const auth = authFor(session, ref.host).forScope(pullScope(ref));
  return session.clientOver([new UrlTableSource(`${ref.base}/v2/${ref.repository}/blobs/`, urls, session.http, auth)]);
}

const MAX_SMALL_BLOB = 4 * 1024 * 1024;

/** A small blob (a config) by digest: from the store, else the registry, verified, then stored. */
export async function smallBlob(session: Session, store: Store, ref: OciReference, digest: string, what: string, signal?: AbortSignal): Promise<Buffer> {
  const hex = digest.slice('sha256:'.length);
  const cached = await store.readManifest(hex);
  if (cached && sha256(cached) === hex) return cached;
  const { bytes, url } = await blobClient(session, ref, [digest]).fetchSmall(`data/${hex}`, what, MAX_SMALL_BLOB, signal);
  if (sha256(bytes) !== hex) {
    throw new ModelsError('E_INTEGRITY', `${what}: ${url} served bytes whose sha256 is ${sha256(bytes)}, not ${hex}`, { hint: 'try again; if it repeats, the registry serves damaged blobs' });
  }
  await store.init().catch(() => undefined);
  await store.writeManifest(hex, bytes).catch(() => undefined);
  return bytes;
}

/** A blob in the store as an object (verified by its digest), downloaded unless it is there. Returns its path. */
export async function storedBlob(session: Session, store: Store, ref: OciReference, digest: string, size: number, what: string, signal?: AbortSignal): Promise<string> {
  const hex = digest.slice('sha256:'.length);
  await store.init();
  const info = await lstat(store.objectPath(hex)).catch(() => undefined);
  if (info?.isFile() && info.size === size && (await store.trustObject(hex, size, undefined)) === 'ok') return store.objectPath(hex);
  const dir = await store.preparePartialDir(sha256(`oci-blob\n${digest}\n${process.pid}\n${Math.random()}`));
  const temp = join(dir, 'blob');
  try {
    const got = await downloadToFile(blobClient(session, ref, [digest]), `data/${hex}`, temp, what, { signal, maxBytes: size });
    if (got.sha256 !== hex || got.size !== size) {
      throw new ModelsError('E_INTEGRITY', `${what}: the registry served ${got.size} bytes with sha256 ${got.sha256}; the manifest says ${size} bytes, ${digest}`, { hint: 'try again; if it repeats, the registry serves damaged blobs' });
    }
    await store.putObject(temp, hex);
    return store.objectPath(hex);
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
