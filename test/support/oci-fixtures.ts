/**
 * Media types, annotations and fixture builders for the model layouts found in OCI registries:
 * ORAS artifacts, CNCF ModelPack, KitOps ModelKits and Ollama models. Each builder returns the
 * manifest bytes, every blob, and the files a client should install from it, so a test pushes it
 * with `pushFixture` (test/support/oci-push.ts) and compares an install byte for byte.
 * Every constant names the file it comes from.
 */
import { createHash } from 'node:crypto';
import { digestOf, type Descriptor, type OciTestClient } from './oci-push.js';
import { tar, tarGz, type TarEntry } from './tar.js';

/** opencontainers/image-spec specs-go/v1/mediatype.go and annotations.go; distribution/distribution manifest/schema2. */
export const OCI = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  /** image-spec manifest.md "Guidance for an Empty Descriptor": the two bytes `{}`. */
  empty: 'application/vnd.oci.empty.v1+json',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
  layerTarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  imageConfig: 'application/vnd.oci.image.config.v1+json',
  annotationTitle: 'org.opencontainers.image.title',
  annotationCreated: 'org.opencontainers.image.created',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

/** The `Accept` list a client must send: distribution 2.8 answers 404 for an OCI manifest without it. */
export const MANIFEST_ACCEPT = [OCI.manifest, OCI.index, OCI.dockerManifest, OCI.dockerManifestList];

export const EMPTY_CONFIG = Buffer.from('{}');
export const EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

/** oras-project/oras-go: pack.go (MediaTypeUnknownArtifact), content/file/file.go (defaultBlobMediaType, AnnotationUnpack, AnnotationDigest). */
export const ORAS = {
  unknownArtifact: 'application/vnd.unknown.artifact.v1',
  /** oras push of a file: ocispec.MediaTypeImageLayer unless told otherwise. */
  defaultFileMediaType: OCI.layerTar,
  /** oras push of a folder: a tar+gzip layer titled by the folder, with these two annotations. */
  defaultDirMediaType: OCI.layerTarGzip,
  annotationUnpack: 'io.deis.oras.content.unpack',
  annotationDigest: 'io.deis.oras.content.digest',
} as const;

/** modelpack/model-spec specs-go/v1/mediatype.go and annotations.go (docs/spec.md for the manifest). */
export const MODELPACK = {
  artifactType: 'application/vnd.cncf.model.manifest.v1+json',
  config: 'application/vnd.cncf.model.config.v1+json',
  weightRaw: 'application/vnd.cncf.model.weight.v1.raw',
  weightTar: 'application/vnd.cncf.model.weight.v1.tar',
  weightTarGzip: 'application/vnd.cncf.model.weight.v1.tar+gzip',
  weightTarZstd: 'application/vnd.cncf.model.weight.v1.tar+zstd',
  weightConfigRaw: 'application/vnd.cncf.model.weight.config.v1.raw',
  weightConfigTar: 'application/vnd.cncf.model.weight.config.v1.tar',
  docRaw: 'application/vnd.cncf.model.doc.v1.raw',
  docTar: 'application/vnd.cncf.model.doc.v1.tar',
  codeRaw: 'application/vnd.cncf.model.code.v1.raw',
  datasetRaw: 'application/vnd.cncf.model.dataset.v1.raw',
  annotationFilepath: 'org.cncf.model.filepath',
  annotationFileMetadata: 'org.cncf.model.file.metadata+json',
} as const;

/**
 * kitops-ml/kitops pkg/lib/constants/mediaType.go (`application/vnd.kitops.modelkit.<type>.v1.tar[+gzip]`,
 * config `…config.v1+json`) and consts.go (CliVersionAnnotation). pkg/lib/kitfile/local-storage.go
 * createManifest sets no `mediaType` field in the manifest body (the registry takes the PUT's
 * Content-Type) and no artifactType; layers (pkg/lib/kitfile/layer.go) carry no annotations: the
 * tar holds the files at their Kitfile `path`.
 */
export const KITOPS = {
  config: 'application/vnd.kitops.modelkit.config.v1+json',
  layer: (type: 'model' | 'modelpart' | 'dataset' | 'code' | 'docs', gzip = false): string =>
    `application/vnd.kitops.modelkit.${type}.v1.tar${gzip ? '+gzip' : ''}`,
  annotationCliVersion: 'ml.kitops.modelkit.cli-version',
} as const;

/**
 * ollama/ollama server/images.go (the layer media types a model is read from), server/create.go
 * (where each is written; the config is `application/vnd.docker.container.image.v1+json`) and
 * manifest/manifest.go (schemaVersion 2, Docker v2 manifest media type).
 */
export const OLLAMA = {
  model: 'application/vnd.ollama.image.model',
  projector: 'application/vnd.ollama.image.projector',
  adapter: 'application/vnd.ollama.image.adapter',
  template: 'application/vnd.ollama.image.template',
  system: 'application/vnd.ollama.image.system',
  params: 'application/vnd.ollama.image.params',
  messages: 'application/vnd.ollama.image.messages',
  license: 'application/vnd.ollama.image.license',
  /** Older models: a prompt template (images.go treats it as `template`). */
  prompt: 'application/vnd.ollama.image.prompt',
} as const;

/** The file names issue 14 gives each Ollama layer. */
export const OLLAMA_FILES: Record<string, string> = {
  [OLLAMA.model]: 'model.gguf',
  [OLLAMA.projector]: 'projector.gguf',
  [OLLAMA.adapter]: 'adapter.gguf',
  [OLLAMA.template]: 'template',
  [OLLAMA.system]: 'system',
  [OLLAMA.params]: 'params',
  [OLLAMA.messages]: 'messages',
  [OLLAMA.license]: 'license',
};

export interface OciFixture {
  manifest: Buffer;
  mediaType: string;
  /** Config and layer blobs, in push order. */
  blobs: Buffer[];
  /** What an install must produce: relative path -> bytes. */
  files: Record<string, Buffer>;
}

const bytesOf = (c: Buffer | string): Buffer => (typeof c === 'string' ? Buffer.from(c) : c);
const desc = (mediaType: string, blob: Buffer, annotations?: Record<string, string>): Descriptor => ({
  mediaType,
  digest: digestOf(blob),
  size: blob.length,
  ...(annotations ? { annotations } : {}),
});

function fixture(manifest: Record<string, unknown>, mediaType: string, blobs: Buffer[], files: Record<string, Buffer>): OciFixture {
  return { manifest: Buffer.from(JSON.stringify(manifest)), mediaType, blobs, files };
}

/** `oras push ref a.bin b/c.txt`: an empty config, one layer per file titled by its path. */
export function orasFixture(files: Array<{ path: string; content: Buffer | string; mediaType?: string }>, options: { artifactType?: string; dir?: { name: string; files: Record<string, Buffer | string> } } = {}): OciFixture {
  const out: Record<string, Buffer> = {};
  const blobs: Buffer[] = [EMPTY_CONFIG];
  const layers: Descriptor[] = files.map((f) => {
    const b = bytesOf(f.content);
    blobs.push(b);
    out[f.path] = b;
    return desc(f.mediaType ?? ORAS.defaultFileMediaType, b, { [OCI.annotationTitle]: f.path });
  });
  if (options.dir) {
    // `oras push ref folder/`: one tar+gzip layer, unpacked by oras pull because of the annotation.
    const entries: TarEntry[] = [{ name: `${options.dir.name}/`, type: '5' }];
    for (const [p, c] of Object.entries(options.dir.files)) {
      entries.push({ name: `${options.dir.name}/${p}`, content: c });
      out[`${options.dir.name}/${p}`] = bytesOf(c);
    }
    const plain = tar(entries);
    const gz = tarGz(entries);
    blobs.push(gz);
    layers.push(desc(ORAS.defaultDirMediaType, gz, { [OCI.annotationTitle]: options.dir.name, [ORAS.annotationUnpack]: 'true', [ORAS.annotationDigest]: digestOf(plain) }));
  }
  return fixture(
    {
      schemaVersion: 2,
      mediaType: OCI.manifest,
      artifactType: options.artifactType ?? ORAS.unknownArtifact,
      config: { ...desc(OCI.empty, EMPTY_CONFIG), data: EMPTY_CONFIG.toString('base64') },
      layers,
      annotations: { [OCI.annotationCreated]: '2026-01-01T00:00:00Z' },
    },
    OCI.manifest,
    blobs,
    out,
  );
}

export interface ModelPackFile {
  path: string;
  content: Buffer | string;
  /** raw: the blob is the file; tar / tar+gzip: a one-file archive (default raw). */
  format?: 'raw' | 'tar' | 'tar+gzip';
  kind?: 'weight' | 'weight.config' | 'doc' | 'code' | 'dataset';
}

/** A CNCF ModelPack artifact as modctl builds it: each layer annotated with its file path. */
export function modelPackFixture(files: ModelPackFile[], descriptor: Record<string, unknown> = { name: 'tiny', family: 'test' }): OciFixture {
  const out: Record<string, Buffer> = {};
  const layerBlobs: Buffer[] = [];
  const diffIds: string[] = [];
  const layers = files.map((f) => {
    const content = bytesOf(f.content);
    out[f.path] = content;
    const format = f.format ?? 'raw';
    const blob = format === 'raw' ? content : format === 'tar' ? tar([{ name: f.path, content }]) : tarGz([{ name: f.path, content }]);
    diffIds.push(digestOf(format === 'tar+gzip' ? tar([{ name: f.path, content }]) : blob));
    layerBlobs.push(blob);
    return desc(`application/vnd.cncf.model.${f.kind ?? 'weight'}.v1.${format}`, blob, { [MODELPACK.annotationFilepath]: f.path });
  });
  const config = Buffer.from(JSON.stringify({ descriptor, modelfs: { type: 'layers', diffIds }, config: { format: 'safetensors' } }));
  return fixture(
    { schemaVersion: 2, mediaType: OCI.manifest, artifactType: MODELPACK.artifactType, config: desc(MODELPACK.config, config), layers },
    OCI.manifest,
    [config, ...layerBlobs],
    out,
  );
}

export interface KitFileEntry {
  path: string;
  content: Buffer | string;
  role: 'model' | 'modelpart' | 'dataset' | 'code' | 'docs';
  gzip?: boolean;
}

/**
 * A KitOps ModelKit: the Kitfile (JSON) is the config; one tar layer per Kitfile entry, holding the
 * file at its path. The manifest body has no mediaType field, as kit writes it.
 */
export function kitopsFixture(entries: KitFileEntry[], pkg: Record<string, unknown> = { name: 'tiny', authors: ['test'] }): OciFixture {
  const out: Record<string, Buffer> = {};
  const blobs: Buffer[] = [];
  const lists: Record<string, Array<Record<string, string>>> = { modelpart: [], dataset: [], code: [], docs: [] };
  let model: Record<string, string> | undefined;
  const layers = entries.map((e) => {
    const content = bytesOf(e.content);
    out[e.path] = content;
    const plain = tar([{ name: e.path, content }]);
    const blob = e.gzip ? tarGz([{ name: e.path, content }]) : plain;
    blobs.push(blob);
    // pkg/artifact/kitfile.go: each entry's LayerInfo (digest, diffId) is inlined next to its path.
    const info = { path: e.path, digest: digestOf(blob), diffId: digestOf(plain) };
    if (e.role === 'model') model = { name: 'tiny', ...info };
    else lists[e.role]?.push(info);
    return desc(KITOPS.layer(e.role, e.gzip), blob);
  });
  const kitfile = {
    manifestVersion: '1.0.0',
    package: pkg,
    ...(model ? { model: { ...model, ...(lists.modelpart?.length ? { parts: lists.modelpart } : {}) } } : {}),
    ...(lists.dataset?.length ? { datasets: lists.dataset } : {}),
    ...(lists.code?.length ? { code: lists.code } : {}),
    ...(lists.docs?.length ? { docs: lists.docs } : {}),
  };
  const config = Buffer.from(JSON.stringify(kitfile));
  return fixture(
    { schemaVersion: 2, config: desc(KITOPS.config, config), layers, annotations: { [KITOPS.annotationCliVersion]: '1.0.0' } },
    OCI.manifest,
    [config, ...blobs],
    out,
  );
}

/** An Ollama model as `ollama push` writes it: a Docker v2 manifest with application/vnd.ollama.image.* layers. */
export function ollamaFixture(layers: Partial<Record<keyof typeof OLLAMA, Buffer | string>>): OciFixture {
  const out: Record<string, Buffer> = {};
  const blobs: Buffer[] = [];
  const descs: Descriptor[] = [];
  for (const [key, value] of Object.entries(layers)) {
    if (value === undefined) continue;
    const mediaType = OLLAMA[key as keyof typeof OLLAMA];
    const b = bytesOf(value);
    blobs.push(b);
    descs.push(desc(mediaType, b));
    out[OLLAMA_FILES[mediaType] ?? key] = b;
  }
  const diffIds = blobs.map((b) => `sha256:${createHash('sha256').update(b).digest('hex')}`);
  // model.ConfigV2 (types/model/config.go), written by createConfigLayer in server/create.go.
  const config = Buffer.from(JSON.stringify({ model_format: 'gguf', model_family: 'llama', model_families: ['llama'], model_type: '1B', file_type: 'Q8_0', architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }));
  return fixture({ schemaVersion: 2, mediaType: OCI.dockerManifest, config: desc(OCI.dockerConfig, config), layers: descs }, OCI.dockerManifest, [config, ...blobs], out);
}

/** An OCI index over manifests already pushed (by digest), with platforms when given. */
export function indexFixture(entries: Array<{ manifest: OciFixture; platform?: { os: string; architecture: string } }>): OciFixture {
  const manifests = entries.map((e) => ({ ...desc(e.manifest.mediaType, e.manifest.manifest), ...(e.platform ? { platform: e.platform } : {}) }));
  return fixture({ schemaVersion: 2, mediaType: OCI.index, manifests }, OCI.index, [], {});
}

/** Push every blob, then the manifest under `reference` (a tag or digest); returns the manifest digest. */
export async function pushFixture(client: OciTestClient, repo: string, reference: string, f: OciFixture): Promise<string> {
  for (const b of f.blobs) await client.pushBlob(repo, b);
  return client.pushManifest(repo, reference, f.manifest, f.mediaType);
}
