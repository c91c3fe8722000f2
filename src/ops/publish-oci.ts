/**
 * `models publish DIR --to oci://HOST/REPO:TAG`: the folder as an ORAS-compatible OCI artifact. An
 * OCI image manifest with artifactType application/vnd.xprim.model.v1, the empty config, and one
 * layer per file titled (`org.opencontainers.image.title`) by its relative path, in the order of
 * `models publish` (UTF-8 bytes of the path): the same folder always gives the same digest. Each
 * blob is uploaded once (a HEAD first; a blob another repository of the registry holds is mounted
 * from it: `--mount-from`, else where this machine published it before), and the manifest only when
 * the tag does not already name it, so publishing an unchanged folder again uploads nothing.
 * `oras pull` and `oci:` entries read it.
 */
import type { Session } from '../project/session.js';
import { ANNOTATION, EMPTY_CONFIG, MEDIA, XPRIM_ARTIFACT } from '../sources/oci/media-types.js';
import { type OciReference, describeReference, mountRepository, parseReference } from '../sources/oci/reference.js';
import { ModelsError } from '../util/errors.js';
import { sha256, sha256File } from '../util/hash.js';
import { knownLocations, rememberLocations } from './oci-blob-locations.js';
import { type Blob, OciUploader } from './oci-upload.js';
import { scanSource } from './publish/source.js';

export interface PublishOciOptions {
  sourceDir: string;
  /** oci://HOST/REPO:TAG */
  to: string;
  session: Session;
  /** A repository of the same registry to mount blobs from (`oras cp` mounts from its source repository). */
  mountFrom?: string;
  signal?: AbortSignal;
  onProgress?: (event: { file: string; result: 'present' | 'mounted' | 'uploaded' }) => void;
}

export interface PublishOciResult {
  reference: string;
  digest: string;
  files: number;
  totalSize: number;
  blobsUploaded: number;
  /** Blobs the registry mounted from another of its repositories instead of receiving them. */
  blobsMounted: number;
  bytesUploaded: number;
  /** Nothing was uploaded: the tag already named this manifest. */
  unchanged: boolean;
}

export function parseOciTarget(to: string): OciReference & { tag: string } {
  const text = to.replace(/^oci:\/\//, '');
  const ref = parseReference(text, `--to ${to}`);
  if (ref.digest || !ref.tag || !/:[\w][\w.-]{0,127}$/.test(text)) {
    throw new ModelsError('E_USAGE', `--to ${to}: expected oci://HOST/REPO:TAG (a tag to publish under)`, { hint: 'e.g. --to oci://ghcr.io/acme/tiny-model:v1' });
  }
  return ref as OciReference & { tag: string };
}

const digestOf = (bytes: Buffer): string => `sha256:${sha256(bytes)}`;

export async function publishOci(options: PublishOciOptions): Promise<PublishOciResult> {
  const ref = parseOciTarget(options.to);
  const mountFrom = options.mountFrom !== undefined ? mountRepository(options.mountFrom, ref) : undefined;
  const { files } = await scanSource(options.sourceDir);
  if (files.length === 0) throw new ModelsError('E_USAGE', `source folder ${options.sourceDir} holds no files`, { hint: 'put the model files in the folder, then publish' });
  const layers: (Blob & { title: string })[] = [];
  for (const file of files) layers.push({ title: file.path, digest: `sha256:${await sha256File(file.readPath)}`, size: file.size, path: file.readPath });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      artifactType: XPRIM_ARTIFACT,
      config: { mediaType: MEDIA.empty, digest: digestOf(EMPTY_CONFIG), size: EMPTY_CONFIG.length, data: EMPTY_CONFIG.toString('base64') },
      layers: layers.map((l) => ({ mediaType: MEDIA.layerTar, digest: l.digest, size: l.size, annotations: { [ANNOTATION.title]: l.title } })),
    }),
  );
  const digest = digestOf(manifest);
  const uploader = new OciUploader(options.session, ref, options.signal);
  const result = { reference: describeReference(ref), digest, files: files.length, totalSize: layers.reduce((s, l) => s + l.size, 0) };
  const store = options.session.store;
  if ((await uploader.tagDigest(ref.tag)) === digest) {
    await rememberLocations(store, ref.host, ref.repository, [digestOf(EMPTY_CONFIG), ...layers.map((l) => l.digest)]);
    return { ...result, blobsUploaded: 0, blobsMounted: 0, bytesUploaded: 0, unchanged: true };
  }
  const known = await knownLocations(store, ref.host);
  const counts = { uploaded: 0, mounted: 0, present: 0 };
  const seen = new Set<string>();
  for (const blob of [{ digest: digestOf(EMPTY_CONFIG), size: EMPTY_CONFIG.length, bytes: EMPTY_CONFIG, title: '(config)' }, ...layers]) {
    if (seen.has(blob.digest)) continue;
    seen.add(blob.digest);
    const outcome = await uploader.pushBlob(blob, mountFrom ?? known.get(blob.digest));
    counts[outcome]++;
    options.onProgress?.({ file: blob.title, result: outcome });
  }
  await uploader.putManifest(ref.tag, manifest, MEDIA.ociManifest);
  await rememberLocations(store, ref.host, ref.repository, [...seen]);
  return { ...result, blobsUploaded: counts.uploaded, blobsMounted: counts.mounted, bytesUploaded: uploader.bytesUploaded, unchanged: false };
}
