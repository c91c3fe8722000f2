/**
 * KitOps ModelKits (kitops-ml/kitops pkg/lib/kitfile): the config is the Kitfile as JSON; each layer
 * (`application/vnd.kitops.modelkit.<type>.v1.tar[+gzip]`) is a tar holding the files of one Kitfile
 * entry at that entry's `path`. A layer is matched to its entry by digest (the Kitfile records it),
 * else by type and order (model, model.parts, datasets, code, docs).
 */
import type { ImageManifest } from '../document.js';
import { type Layer, layoutError, tarFormat } from './types.js';

interface KitEntry {
  path?: unknown;
  digest?: unknown;
}

interface Kitfile {
  model?: KitEntry & { parts?: KitEntry[] };
  datasets?: KitEntry[];
  code?: KitEntry[];
  docs?: KitEntry[];
  prompts?: KitEntry[];
}

const LAYER = /^application\/vnd\.kitops\.modelkit\.(\w+)\.v1\.tar(\+gzip)?$/;

function entriesByType(kitfile: Kitfile): Record<string, KitEntry[]> {
  const list = (v: unknown): KitEntry[] => (Array.isArray(v) ? v.filter((e): e is KitEntry => typeof e === 'object' && e !== null) : []);
  return {
    model: kitfile.model && typeof kitfile.model === 'object' ? [kitfile.model] : [],
    modelpart: list(kitfile.model?.parts),
    dataset: list(kitfile.datasets),
    code: list(kitfile.code),
    docs: list(kitfile.docs),
    prompts: list(kitfile.prompts),
  };
}

export function kitopsLayers(manifest: ImageManifest, config: Buffer, where: string): Layer[] {
  let kitfile: Kitfile;
  try {
    kitfile = JSON.parse(config.toString('utf8')) as Kitfile;
  } catch {
    throw layoutError(where, 'its config (the Kitfile) is not JSON');
  }
  const byType = entriesByType(kitfile);
  const all = Object.values(byType).flat();
  const used = new Map<string, number>();
  return manifest.layers.map((layer, i): Layer => {
    const match = LAYER.exec(layer.mediaType);
    const format = tarFormat(layer.mediaType);
    if (!match || !format) throw layoutError(where, `layers[${i}] is ${layer.mediaType}: not a KitOps tar layer this version can unpack`, 'unpack it with `kit unpack`, or ask for this format in an issue');
    const type = match[1] as string;
    let entry = all.find((e) => e.digest === layer.digest);
    if (!entry) {
      const n = used.get(type) ?? 0;
      used.set(type, n + 1);
      entry = byType[type]?.[n];
    }
    if (!entry || typeof entry.path !== 'string' || entry.path === '') throw layoutError(where, `layers[${i}] (${type}) has no entry with a path in the Kitfile`);
    return { kind: 'archive', path: entry.path.replace(/^\.\/+/, '') || '.', digest: layer.digest, size: layer.size, format };
  });
}
