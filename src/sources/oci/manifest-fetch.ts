/**
 * Manifests from a registry: `GET /v2/<name>/manifests/<tag|digest>` with the OCI and Docker Accept
 * types, verified against the digest asked for (or hashed to learn it, for a tag), and kept in the
 * store under its digest, so that `install --frozen`, `verify` and repeat runs read it from there and
 * never ask what a tag points at.
 */
import type { Session } from '../../project/session.js';
import type { Store } from '../../store/store.js';
import { ModelsError } from '../../util/errors.js';
import { sha256 } from '../../util/hash.js';
import { debugLog } from '../../util/log.js';
import { drain, header } from '../../registry/source.js';
import { authFor } from './auth.js';
import { MAX_MANIFEST_BYTES, parseDocument, type ImageIndex, type ImageManifest } from './document.js';
import { readSmall, registryRequest, withRetries } from './http.js';
import { MANIFEST_ACCEPT } from './media-types.js';
import { type OciReference, describeReference, manifestUrl } from './reference.js';

export interface FetchedManifest {
  bytes: Buffer;
  /** sha256:<hex> of the bytes */
  digest: string;
  document: ImageManifest | ImageIndex;
}

export function pullScope(ref: OciReference): string {
  return `repository:${ref.repository}:pull`;
}

/** The manifest (or index) a tag or digest names now, from the registry. */
export async function fetchManifest(session: Session, ref: OciReference, reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
  const url = manifestUrl(ref, reference);
  const where = `${ref.host}/${ref.repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
  const auth = authFor(session, ref.host).forScope(pullScope(ref));
  const { bytes, contentType, stated } = await withRetries(session, `manifest of ${where}`, ref.base, async () => {
    const response = await registryRequest(session, auth, url, { headers: { accept: MANIFEST_ACCEPT }, ...(signal ? { signal } : {}) });
    if (response.status === 404) {
      await drain(response.body);
      throw new ModelsError('E_NOT_FOUND', `${where}: no such manifest (404 from ${url})`, { hint: 'check the repository and tag; `oras repo tags` or the registry UI lists them' });
    }
    if (response.status !== 200) {
      await drain(response.body);
      throw new ModelsError('E_HTTP', `${where}: HTTP ${response.status} from ${url}`, { hint: 'check the reference in models.yaml' });
    }
    return { bytes: await readSmall(response, MAX_MANIFEST_BYTES, `manifest of ${where}`), contentType: header(response.headers['content-type']), stated: header(response.headers['docker-content-digest']) };
  }, signal);
  const digest = `sha256:${sha256(bytes)}`;
  if (reference.startsWith('sha256:') && digest !== reference) {
    throw new ModelsError('E_INTEGRITY', `${where}: the registry served a manifest whose digest is ${digest}`, { hint: 'a proxy or the registry altered it; try again, or tell the registry owner' });
  }
  if (stated && stated !== digest) debugLog(`${where}: Docker-Content-Digest ${stated} differs from the bytes' ${digest}; the bytes count`);
  return { bytes, digest, document: parseDocument(bytes, where, contentType) };
}

/** A manifest by digest: from the store (verified), else the registry (then stored). Never a tag. */
export async function manifestByDigest(session: Session, store: Store, ref: OciReference, digest: string, signal?: AbortSignal): Promise<FetchedManifest> {
  const hex = digest.slice('sha256:'.length);
  const where = `${describeReference({ ...ref, digest })}`;
  const cached = await store.readManifest(hex);
  if (cached && sha256(cached) === hex) {
    try {
      debugLog(`cache hit: OCI manifest ${digest.slice(0, 19)} of ${ref.host}/${ref.repository}`);
      return { bytes: cached, digest, document: parseDocument(cached, where) };
    } catch {
      // damaged or unparsable in the store: fetch it again
    }
  }
  const fetched = await fetchManifest(session, ref, digest, signal);
  await keepManifest(store, fetched);
  return fetched;
}

/** Keep verified manifest bytes in the store, under their digest (a store that cannot take it costs a fetch next time). */
export async function keepManifest(store: Store, fetched: { bytes: Buffer; digest: string }): Promise<void> {
  await store.init().catch(() => undefined);
  await store.writeManifest(fetched.digest.slice('sha256:'.length), fetched.bytes).catch(() => undefined);
}
