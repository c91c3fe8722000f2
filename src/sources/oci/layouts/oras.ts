/**
 * ORAS artifacts (oras-project/oras-go content/file): each layer titled `org.opencontainers.image.title`
 * is a file of that name; a folder is pushed as a tar+gzip layer annotated `io.deis.oras.content.unpack`
 * and unpacked. Layers without a title are skipped, as `oras pull` skips them.
 */
import type { ImageManifest } from '../document.js';
import { ANNOTATION } from '../media-types.js';
import { type Layer, layoutError, tarFormat } from './types.js';

export function orasLayers(manifest: ImageManifest, where: string): Layer[] {
  const layers: Layer[] = [];
  for (const layer of manifest.layers) {
    const title = layer.annotations[ANNOTATION.title];
    if (title === undefined || title === '') continue;
    if (layer.annotations[ANNOTATION.orasUnpack] === 'true') {
      const format = tarFormat(layer.mediaType) ?? 'tar.gz';
      layers.push({ kind: 'archive', path: title, digest: layer.digest, size: layer.size, format });
    } else {
      layers.push({ kind: 'file', path: title, digest: layer.digest, size: layer.size });
    }
  }
  if (layers.length === 0 && manifest.layers.length > 0) {
    throw layoutError(where, `none of its ${manifest.layers.length} layers has an ${ANNOTATION.title} annotation, so no layer names a file (a container image, not a model?)`, 'push the model with `oras push` or `models publish --to oci://`, which title every file');
  }
  return layers;
}
