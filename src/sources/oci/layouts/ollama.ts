/**
 * Ollama models (ollama/ollama server/images.go): a Docker v2 manifest whose layers are
 * `application/vnd.ollama.image.<kind>` blobs; each kind becomes one file (model.gguf, template…).
 * Layers of kinds this version does not know are skipped, as Ollama skips them.
 */
import { debugLog } from '../../../util/log.js';
import type { ImageManifest } from '../document.js';
import { OLLAMA_FILES, OLLAMA_PREFIX } from '../media-types.js';
import { type Layer, layoutError } from './types.js';

export function isOllama(manifest: ImageManifest): boolean {
  return manifest.layers.some((l) => l.mediaType.startsWith(OLLAMA_PREFIX));
}

export function ollamaLayers(manifest: ImageManifest, where: string): Layer[] {
  const seen = new Map<string, string>();
  const layers: Layer[] = [];
  for (const layer of manifest.layers) {
    const path = OLLAMA_FILES[layer.mediaType];
    if (!path) {
      debugLog(`${where}: skipping layer ${layer.digest.slice(0, 19)} of unknown type ${layer.mediaType}`);
      continue;
    }
    const other = seen.get(path);
    if (other) throw layoutError(where, `two layers (${other} and ${layer.mediaType}) would both be ${path}`, 'install it with `ollama pull`, or tell its publisher');
    seen.set(path, layer.mediaType);
    layers.push({ kind: 'file', path, digest: layer.digest, size: layer.size });
  }
  return layers;
}
