/** Which layout a manifest is (by its types), and its layers as files and archives. */
import type { ImageManifest } from '../document.js';
import { MEDIA } from '../media-types.js';
import { kitopsLayers } from './kitops.js';
import { modelPackLayers } from './modelpack.js';
import { isOllama, ollamaLayers } from './ollama.js';
import { orasLayers } from './oras.js';
import type { Layer, LayoutName } from './types.js';

export type { ArchiveLayer, FileLayer, Layer, LayoutName } from './types.js';
export { archiveHolding } from './types.js';

export function layoutOf(manifest: ImageManifest): LayoutName {
  if (manifest.config.mediaType === MEDIA.kitopsConfig) return 'kitops';
  if (manifest.artifactType === MEDIA.modelPackArtifact || manifest.config.mediaType === MEDIA.modelPackConfig) return 'modelpack';
  if (isOllama(manifest)) return 'ollama';
  return 'oras';
}

/** The layers as files and archives; `config` is the config blob, needed by KitOps only. */
export function layersOf(layout: LayoutName, manifest: ImageManifest, config: Buffer | undefined, where: string): Layer[] {
  switch (layout) {
    case 'kitops':
      return kitopsLayers(manifest, config ?? Buffer.from('{}'), where);
    case 'modelpack':
      return modelPackLayers(manifest, where);
    case 'ollama':
      return ollamaLayers(manifest, where);
    default:
      return orasLayers(manifest, where);
  }
}
