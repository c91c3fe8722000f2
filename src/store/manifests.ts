/** Manifests through the store: every command that needs one gets it here, verified against its hash. */
import { debugLog } from '../util/log.js';
import { ModelsError, isModelsError } from '../util/errors.js';
import { sha256 } from '../util/hash.js';
import type { RegistryClient } from '../registry/client.js';
import { type ManifestLayout, MAX_MANIFEST_BYTES, parseManifest } from '../registry/manifest.js';
import type { Store } from './store.js';

/**
 * Layouts parsed in this process, for as long as something else holds them: `models install`
 * resolves a manifest to lock it, then installs from it, and parsing 100,000 files a second time
 * cost a second peak of ~60 MB. Weak references: nothing is kept alive for this.
 */
const parsed = new Map<string, WeakRef<ManifestLayout>>();

function remember(hash: string, layout: ManifestLayout): void {
  parsed.set(hash, new WeakRef(layout));
  if (parsed.size > 64) for (const [key, ref] of parsed) if (!ref.deref()) parsed.delete(key);
}

/**
 * The manifest `hash` from the store, else from the registry (then kept in the store, so frozen,
 * offline and verify runs need no registry). `label` names the model in messages, e.g.
 * "vad (demo/silero-vad@1.0.10)". A damaged store copy is fetched again.
 */
export async function getManifest(store: Store, client: RegistryClient, hash: string, label: string, signal?: AbortSignal): Promise<{ layout: ManifestLayout; bytes: Buffer }> {
  const where = `${label} (manifest ${hash.slice(0, 12)})`;
  const cached = await store.readManifest(hash);
  const known = parsed.get(hash)?.deref();
  // Parsed from these very bytes earlier in this run: the store copy still has to be them.
  if (cached && known && sha256(cached) === hash) return { layout: known, bytes: cached };
  if (cached) {
    try {
      const layout = parseManifest(cached, hash, where);
      remember(hash, layout);
      debugLog(`cache hit: manifest ${hash.slice(0, 12)} of ${label}`);
      return { layout, bytes: cached };
    } catch {
      // damaged in the store: fetch it again
    }
  }
  const { bytes, url } = await client.fetchSmall(`data/${hash}`, `manifest of ${label}`, MAX_MANIFEST_BYTES, signal).catch((error: unknown) => {
    if (!isModelsError(error) || error.code !== 'E_NOT_FOUND') throw error;
    // The hash came from models.lock or models.json: one of them names a manifest the registry lacks.
    throw new ModelsError('E_NOT_FOUND', error.message, {
      hint: 'if models.lock was edited by hand, restore it from version control or run `models lock --update`; otherwise the registry is missing this manifest: tell its owner',
      cause: error,
    });
  });
  const layout = parseManifest(bytes, hash, `${where} from ${url}`);
  remember(hash, layout);
  // A store that cannot take it costs a fetch next time, not this install.
  await store.writeManifest(hash, bytes).catch(() => undefined);
  return { layout, bytes };
}
