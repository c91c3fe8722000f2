/**
 * The media types and annotations this client reads and writes. No well-kept npm package carries
 * them (the OCI type packages are Go; `oras-pull` on npm is a one-off), so they are written here,
 * each with the file it comes from:
 * - opencontainers/image-spec specs-go/v1/mediatype.go, annotations.go; distribution's manifest/schema2
 * - oras-project/oras-go content/file (the folder-unpack annotation)
 * - modelpack/model-spec specs-go/v1/mediatype.go, annotations.go
 * - kitops-ml/kitops pkg/lib/constants/mediaType.go
 * - ollama/ollama server/images.go
 */
export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  empty: 'application/vnd.oci.empty.v1+json',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
  modelPackArtifact: 'application/vnd.cncf.model.manifest.v1+json',
  modelPackConfig: 'application/vnd.cncf.model.config.v1+json',
  kitopsConfig: 'application/vnd.kitops.modelkit.config.v1+json',
} as const;

/** What `GET /v2/<name>/manifests/<ref>` asks for: distribution 2.8 answers 404 to an OCI manifest asked without its type. */
export const MANIFEST_ACCEPT = [MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.dockerList].join(', ');

export const ANNOTATION = {
  title: 'org.opencontainers.image.title',
  orasUnpack: 'io.deis.oras.content.unpack',
  modelPackFilepath: 'org.cncf.model.filepath',
} as const;

/** The artifactType of what `models publish --to oci://` pushes. */
export const XPRIM_ARTIFACT = 'application/vnd.xprim.model.v1';

/** The empty config (image-spec "Guidance for an Empty Descriptor"): the two bytes `{}`. */
export const EMPTY_CONFIG = Buffer.from('{}');

/** Ollama layer media types and the file each becomes (issue 14); `prompt` is an older `template`. */
export const OLLAMA_FILES: Record<string, string> = {
  'application/vnd.ollama.image.model': 'model.gguf',
  'application/vnd.ollama.image.projector': 'projector.gguf',
  'application/vnd.ollama.image.adapter': 'adapter.gguf',
  'application/vnd.ollama.image.template': 'template',
  'application/vnd.ollama.image.prompt': 'template',
  'application/vnd.ollama.image.system': 'system',
  'application/vnd.ollama.image.params': 'params',
  'application/vnd.ollama.image.messages': 'messages',
  'application/vnd.ollama.image.license': 'license',
};
export const OLLAMA_PREFIX = 'application/vnd.ollama.image.';

export function isIndex(mediaType: string | undefined): boolean {
  return mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerList;
}
