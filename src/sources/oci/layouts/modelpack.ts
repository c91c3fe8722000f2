/**
 * CNCF ModelPack (modelpack/model-spec docs/spec.md): every layer carries `org.cncf.model.filepath`;
 * `…v1.raw` layers are the file itself, `…v1.tar` and `…v1.tar+gzip` hold it (or a folder) as an archive.
 */
import type { ImageManifest } from '../document.js';
import { ANNOTATION } from '../media-types.js';
import { type Layer, layoutError, tarFormat } from './types.js';

export function modelPackLayers(manifest: ImageManifest, where: string): Layer[] {
  return manifest.layers.map((layer, i): Layer => {
    const path = layer.annotations[ANNOTATION.modelPackFilepath];
    if (path === undefined || path === '') throw layoutError(where, `layers[${i}] (${layer.mediaType}) has no ${ANNOTATION.modelPackFilepath} annotation`);
    if (layer.mediaType.endsWith('.raw')) return { kind: 'file', path, digest: layer.digest, size: layer.size };
    const format = tarFormat(layer.mediaType);
    if (!format) {
      throw layoutError(where, `layers[${i}] "${path}" is ${layer.mediaType}: only .raw, .tar and .tar+gzip ModelPack layers are supported`, 'push it with raw or tar/tar+gzip layers (modctl build --raw), or ask for this format in an issue');
    }
    return { kind: 'archive', path, digest: layer.digest, size: layer.size, format };
  });
}
