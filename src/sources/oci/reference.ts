/**
 * OCI references: `host[:port]/repo[:tag|@sha256:<hex>]` (models.yaml has already added `:latest`
 * where neither is given), normalised as Docker does (`alpine` is `docker.io/library/alpine`, whose
 * API is served by registry-1.docker.io). HTTPS, except to a loopback host, which is spoken to in
 * plain HTTP as Docker does for `localhost:5000`.
 */
import { ModelsError } from '../../util/errors.js';
import { DOCKER_HUB, DOCKER_HUB_API, normalizeOciReference } from '../../util/docker-names.js';
import { isLoopbackHost } from '../../util/urls.js';

export interface OciReference {
  /** host[:port], as config.json `auths` keys it (`docker.io` for Docker Hub). */
  host: string;
  repository: string;
  tag?: string;
  /** sha256:<hex> */
  digest?: string;
  /** https://host or http://host (loopback only). */
  base: string;
}

const REFERENCE = /^([a-z0-9.-]+(?::\d+)?|\[[0-9a-f:]+\](?::\d+)?)\/([a-z0-9._/-]+?)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$/;

export function parseReference(text: string, where = text): OciReference {
  const match = REFERENCE.exec(normalizeOciReference(text));
  if (!match || (match[2] ?? '').split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new ModelsError('E_CONFIG', `${where}: not an OCI reference (expected HOST/REPO:TAG or HOST/REPO@sha256:<64 hex>)`, { hint: 'e.g. ghcr.io/acme/tiny-model:v1' });
  }
  const host = match[1] as string;
  const hostname = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  return {
    host,
    repository: match[2] as string,
    ...(match[3] ? { tag: match[3] } : {}),
    ...(match[4] ? { digest: match[4] } : {}),
    base: host === DOCKER_HUB ? `https://${DOCKER_HUB_API}` : `${isLoopbackHost(hostname) ? 'http' : 'https'}://${host}`,
  };
}

/** The tag or digest a manifest is asked by: the digest when there is one (immutable). */
export function manifestRef(ref: OciReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

export function manifestUrl(ref: OciReference, reference: string): string {
  return `${ref.base}/v2/${ref.repository}/manifests/${reference}`;
}

export function blobUrl(ref: OciReference, digest: string): string {
  return `${ref.base}/v2/${ref.repository}/blobs/${digest}`;
}

/** host/repo:tag or host/repo@digest, for messages. */
export function describeReference(ref: OciReference): string {
  return `${ref.host}/${ref.repository}${ref.digest ? `@${ref.digest}` : `:${ref.tag ?? 'latest'}`}`;
}

/** `--mount-from REPO` (or HOST/REPO on the target's host): a repository name of the same registry. */
export function mountRepository(text: string, target: OciReference): string {
  const repo = text.startsWith(`${target.host}/`) ? text.slice(target.host.length + 1) : text;
  const first = repo.split('/')[0] ?? '';
  if (/[.:]/.test(first) || first === 'localhost') {
    throw new ModelsError('E_USAGE', `--mount-from ${text}: a blob can only be mounted from a repository of ${target.host}`, { hint: `e.g. --mount-from acme/other-model (on ${target.host})` });
  }
  if (!/^[a-z0-9._/-]+$/.test(repo) || repo.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new ModelsError('E_USAGE', `--mount-from ${text}: not a repository name`, { hint: 'lowercase letters, digits, . _ - and / between parts, e.g. acme/other-model' });
  }
  return repo;
}
