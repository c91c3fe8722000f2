/**
 * What the mirror's models.json gets for each locked model: the resolved version (with the source
 * registry's metadata, when its index is readable and agrees with the lock) and the alias the lock
 * was made from; merged into the index the folder already has, where versions never change.
 */
import { join } from 'node:path';
import type { LockedModel } from '../../project/lockfile.js';
import { type Catalog, type VersionEntry, fetchCatalog } from '../../registry/catalog.js';
import type { RegistryClient } from '../../registry/client.js';
import { ModelsError, abortError } from '../../util/errors.js';

/** Each source registry's index, fetched once per run; undefined when it cannot be read. */
export class Catalogs {
  private readonly pending = new Map<string, Promise<Catalog | undefined>>();
  constructor(private readonly signal: AbortSignal | undefined) {}

  get(registryUrl: string, client: RegistryClient): Promise<Catalog | undefined> {
    let entry = this.pending.get(registryUrl);
    if (!entry) {
      // Best effort: metadata is a nicety, and a frozen install never reads the index.
      entry = fetchCatalog(client, registryUrl, this.signal)
        .then(({ catalog }) => catalog)
        .catch(() => {
          if (this.signal?.aborted) throw abortError();
          return undefined;
        });
      this.pending.set(registryUrl, entry);
    }
    return entry;
  }
}

/** The source registry's index entry for a version, when the index is readable and agrees with the lock. */
export function indexEntries(locked: LockedModel, catalog: Catalog | undefined): [string, VersionEntry][] {
  const [group, name] = locked.model.split('/') as [string, string];
  const versions = catalog && Object.hasOwn(catalog, group) && Object.hasOwn(catalog[group] as object, name) ? catalog[group]?.[name] : undefined;
  const source = versions && Object.hasOwn(versions, locked.resolved) ? versions[locked.resolved] : undefined;
  const concrete: VersionEntry = { hash: locked.manifest };
  if (source && source.hash === locked.manifest && source.alias_of === undefined && source.metadata && Object.keys(source.metadata).length > 0) {
    // Copied as is: another publisher's metadata values need not be strings.
    concrete.metadata = source.metadata;
  }
  const entries: [string, VersionEntry][] = [[locked.resolved, concrete]];
  if (locked.version !== locked.resolved) entries.push([locked.version, { hash: locked.manifest, alias_of: locked.resolved }]);
  return entries;
}

function conflict(out: string, model: string, version: string, detail: string): ModelsError {
  return new ModelsError('E_USAGE', `mirror ${join(out, 'models.json')}: ${model} ${version} ${detail}`, {
    hint: 'versions are immutable: mirror into a fresh --out folder, or remove that entry from its models.json',
  });
}

/** Merge the entries into the index; aliases may move, versions may not change. */
export function mergeIndex(index: Catalog, out: string, additions: { model: string; entries: [string, VersionEntry][] }[]): void {
  const setThisRun = new Map<string, string>();
  for (const { model, entries } of additions) {
    const [group, name] = model.split('/') as [string, string];
    const versions = ((index[group] ??= {})[name] ??= {});
    for (const [version, entry] of entries) {
      const key = `${model}@${version}`;
      const earlier = setThisRun.get(key);
      if (earlier !== undefined && earlier !== entry.hash) throw conflict(out, model, version, `is locked to two different manifests (${earlier.slice(0, 12)}, ${entry.hash.slice(0, 12)})`);
      setThisRun.set(key, entry.hash);
      const existing = Object.hasOwn(versions, version) ? versions[version] : undefined;
      if (entry.alias_of !== undefined) {
        if (existing && existing.alias_of === undefined) throw conflict(out, model, version, 'is a version in the mirror, but an alias in the lock');
        versions[version] = entry;
        continue;
      }
      if (!existing) {
        versions[version] = entry;
      } else if (existing.alias_of !== undefined) {
        throw conflict(out, model, version, `is an alias in the mirror, but a version in the lock`);
      } else if (existing.hash !== entry.hash) {
        throw conflict(out, model, version, `is already in the mirror with manifest ${existing.hash}; the lock has ${entry.hash}`);
      } else if (existing.metadata === undefined && entry.metadata !== undefined) {
        existing.metadata = entry.metadata;
      }
    }
  }
}

