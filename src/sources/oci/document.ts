/**
 * OCI manifests and indexes as JSON: parsed, each descriptor checked (sha256 digest, a size), and
 * an index narrowed to the one manifest for a platform. Nothing here touches the network.
 */
import { ModelsError } from '../../util/errors.js';
import { isIndex } from './media-types.js';

export interface Descriptor {
  mediaType: string;
  /** sha256:<hex> */
  digest: string;
  size: number;
  annotations: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

/** Manifests are small; 4 MiB is what the distribution spec asks registries to accept. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_LAYERS = 10_000;

function bad(where: string, problem: string): never {
  throw new ModelsError('E_MANIFEST', `invalid OCI manifest ${where}: ${problem}`, { hint: 'the registry serves a malformed manifest; tell whoever pushed it (nothing was written)' });
}

function descriptor(value: unknown, where: string, at: string): Descriptor {
  if (typeof value !== 'object' || value === null) bad(where, `${at} is not an object`);
  const d = value as Record<string, unknown>;
  if (typeof d.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(d.digest)) {
    bad(where, `${at}.digest ${JSON.stringify(d.digest)?.slice(0, 80)} is not sha256:<64 hex> (only sha256 digests are supported)`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) bad(where, `${at}.size must be a non-negative integer`);
  const annotations: Record<string, string> = {};
  if (typeof d.annotations === 'object' && d.annotations !== null) {
    for (const [k, v] of Object.entries(d.annotations)) if (typeof v === 'string') annotations[k] = v;
  }
  const platform = typeof d.platform === 'object' && d.platform !== null ? (d.platform as Descriptor['platform']) : undefined;
  return { mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest, size: d.size, annotations, ...(platform ? { platform } : {}) };
}

/** Parse manifest bytes; `contentType` is the registry's Content-Type, used when the body has no mediaType (KitOps). */
export function parseDocument(bytes: Uint8Array, where: string, contentType?: string): ImageManifest | ImageIndex {
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    bad(where, 'not JSON');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) bad(where, 'not a JSON object');
  const m = data as Record<string, unknown>;
  if (m.schemaVersion !== 2) bad(where, `schemaVersion ${JSON.stringify(m.schemaVersion)}: only version 2 manifests are supported`);
  const mediaType = typeof m.mediaType === 'string' ? m.mediaType : (contentType ?? '').split(';')[0]?.trim() ?? '';
  if (isIndex(mediaType) || (mediaType === '' && Array.isArray(m.manifests))) {
    if (!Array.isArray(m.manifests)) bad(where, '"manifests" must be an array');
    return { kind: 'index', mediaType, manifests: m.manifests.map((d, i) => descriptor(d, where, `manifests[${i}]`)) };
  }
  if (!Array.isArray(m.layers)) bad(where, '"layers" must be an array');
  if (m.layers.length > MAX_LAYERS) bad(where, `${m.layers.length} layers, more than the ${MAX_LAYERS} allowed`);
  return {
    kind: 'manifest',
    mediaType,
    ...(typeof m.artifactType === 'string' ? { artifactType: m.artifactType } : {}),
    config: descriptor(m.config, where, 'config'),
    layers: m.layers.map((d, i) => descriptor(d, where, `layers[${i}]`)),
  };
}

/** Node's process.platform / arch in OCI's names (image-spec config.md: GOOS / GOARCH). */
export function ociPlatform(os: string, arch: string): { os: string; architecture: string } {
  const oses: Record<string, string> = { win32: 'windows' };
  const arches: Record<string, string> = { x64: 'amd64', ia32: '386', ppc64: 'ppc64le' };
  return { os: oses[os] ?? os, architecture: arches[arch] ?? arch };
}

/**
 * The one manifest of an index: the only one; else the one for `platform` when the entries carry
 * platforms; else an error naming them. Attestation entries (`unknown/unknown`) never count.
 */
export function selectManifest(index: ImageIndex, platform: { os: string; arch: string }, where: string): Descriptor {
  const entries = index.manifests.filter((d) => !(d.platform?.os === 'unknown' && d.platform?.architecture === 'unknown'));
  if (entries.length === 0) bad(where, 'the index lists no manifests');
  if (entries.length === 1) return entries[0] as Descriptor;
  const named = (d: Descriptor) => (d.platform ? `${d.platform.os ?? '?'}/${d.platform.architecture ?? '?'}${d.platform.variant ? `/${d.platform.variant}` : ''}` : d.digest.slice(0, 19));
  const want = ociPlatform(platform.os, platform.arch);
  if (entries.every((d) => d.platform?.os && d.platform.architecture)) {
    const hit = entries.filter((d) => d.platform?.os === want.os && d.platform.architecture === want.architecture);
    if (hit.length >= 1) return hit[0] as Descriptor;
    throw new ModelsError('E_NOT_FOUND', `${where} is an index with no manifest for ${want.os}/${want.architecture}: it has ${entries.map(named).join(', ')}`, {
      hint: 'pin one of them by digest (oci: HOST/REPO@sha256:…), or give the entry a `when:` with one os and arch',
    });
  }
  throw new ModelsError('E_MANIFEST', `${where} is an index of ${entries.length} manifests without platforms to choose by: ${entries.map(named).join(', ')}`, {
    hint: 'pin one of them by digest: oci: HOST/REPO@sha256:…',
  });
}
