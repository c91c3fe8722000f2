/**
 * XPRIM registries (`model:` + `version:`): models.json names the manifest of a version; the
 * manifest pins every chunk. Content comes from the registry and its mirrors.
 */
import type { ModelEntry } from '../project/config.js';
import { isModelsError } from '../util/errors.js';
import type { LockedModel } from '../project/lockfile.js';
import { specHash } from '../project/lock-format.js';
import { type Catalog, fetchCatalog, resolveVersion } from '../registry/catalog.js';
import { getManifest } from '../store/manifests.js';
import { type CheckResult, type ContentContext, type ModelContent, type SourceAdapter, type SourceContext, modelLabel } from './adapter.js';

/** models.json of the entry's registry, fetched once per run. */
function catalogOf(ctx: SourceContext, entry: ModelEntry): Promise<{ catalog: Catalog; url: string }> {
  const key = `xprim:${entry.registryUrl}`;
  let pending = ctx.memo.get(key) as Promise<{ catalog: Catalog; url: string }> | undefined;
  if (!pending) {
    pending = fetchCatalog(ctx.session.clientFor(entry), entry.registry, ctx.signal);
    ctx.memo.set(key, pending);
  }
  return pending;
}

async function resolve(ctx: SourceContext, entry: ModelEntry): Promise<LockedModel> {
  const { catalog, url } = await catalogOf(ctx, entry);
  const resolution = resolveVersion(catalog, entry.model, entry.version, url);
  const { layout } = await getManifest(ctx.session.store, ctx.session.clientFor(entry), resolution.manifest, `${entry.name} (${entry.model}@${resolution.resolved})`, ctx.signal);
  return {
    spec: specHash(entry),
    model: entry.model,
    version: entry.version,
    resolved: resolution.resolved,
    registry: entry.registry,
    manifest: resolution.manifest,
    size: layout.totalSize,
    files: layout.files.map((f) => ({ path: f.path, size: f.size, ...(f.sha256 ? { sha256: f.sha256 } : {}) })),
  };
}

async function content(ctx: ContentContext, entry: ModelEntry | undefined, locked: LockedModel): Promise<ModelContent> {
  // Without an entry (a model no longer in models.yaml), the lock's registry as written.
  const client = ctx.session.clientFor(entry ?? locked.registry);
  const { layout } = await getManifest(ctx.store, client, locked.manifest, modelLabel(entry?.name ?? locked.model, locked), ctx.signal);
  return { layout, client };
}

async function check(ctx: SourceContext, entry: ModelEntry, locked: LockedModel): Promise<CheckResult> {
  let now;
  try {
    const { catalog, url } = await catalogOf(ctx, entry);
    now = resolveVersion(catalog, entry.model, entry.version, url);
  } catch (error) {
    if (isModelsError(error) && error.code === 'E_NOT_FOUND') return { status: 'missing', detail: error.message };
    throw error;
  }
  const latest = { resolved: now.resolved, manifest: now.manifest };
  if (locked.manifest === now.manifest && locked.resolved === now.resolved) return { status: 'current', latest };
  // Same version name, different bytes: a pinned version was replaced upstream.
  if (locked.resolved === now.resolved) {
    return { status: 'changed', latest, detail: `${entry.model}@${now.resolved} now has manifest ${now.manifest.slice(0, 12)}; versions should be immutable — check with the registry owner before updating` };
  }
  return { status: 'outdated', latest };
}

export const xprimSource: SourceAdapter = { kind: 'xprim', resolve, content, check };
