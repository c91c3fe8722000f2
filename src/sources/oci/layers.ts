/** The layers of a manifest as files and archives; a KitOps Kitfile is read from the config blob (kept in the store). */
import type { Session } from '../../project/session.js';
import type { Store } from '../../store/store.js';
import { smallBlob } from './blobs.js';
import type { ImageManifest } from './document.js';
import { type Layer, type LayoutName, layersOf } from './layouts/index.js';
import type { OciReference } from './reference.js';

export async function layersOfManifest(session: Session, store: Store, ref: OciReference, manifest: ImageManifest, layout: LayoutName, where: string, signal?: AbortSignal): Promise<Layer[]> {
  const config = layout === 'kitops' ? await smallBlob(session, store, ref, manifest.config.digest, `${where}: Kitfile (config)`, signal) : undefined;
  return layersOf(layout, manifest, config, where);
}
