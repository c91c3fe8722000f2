/**
 * The entry a publish adds to models.json: the version (immutable once published: same manifest,
 * same metadata) and its aliases (which may move). Checked once before chunking, to fail fast,
 * and again under the registry lock, where it counts.
 */
import type { Catalog, VersionEntry } from '../../registry/catalog.js';
import { sortKeys } from '../registry-index.js';
import { usage } from './options.js';

export interface IndexChange {
  group: string;
  name: string;
  version: string;
  hash: string;
  metadata: Record<string, string> | undefined;
  aliases: string[];
}

function sameMetadata(a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined): boolean {
  return JSON.stringify(sortKeys(a ?? {})) === JSON.stringify(sortKeys(b ?? {}));
}

/** Checks that do not depend on the content (run before chunking too, to fail fast). */
export function checkNames(versions: Record<string, VersionEntry>, change: Omit<IndexChange, 'hash'>): void {
  const model = `${change.group}/${change.name}`;
  const existing = versions[change.version];
  if (existing?.alias_of !== undefined) {
    throw usage(
      `${model} ${change.version} is an alias of ${existing.alias_of}, not a version`,
      'publish under another version name; aliases are set with --alias',
    );
  }
  for (const alias of change.aliases) {
    const entry = versions[alias];
    if (entry && entry.alias_of === undefined) {
      throw usage(`cannot make ${model} ${alias} an alias: it is a published version`, 'choose another alias name');
    }
  }
}

/** Apply the publish to the index in place. Throws when it would change a published version. */
export function applyChange(index: Catalog, change: IndexChange): void {
  const model = `${change.group}/${change.name}`;
  const group = (index[change.group] ??= {});
  const versions = (group[change.name] ??= {});
  checkNames(versions, change);
  const existing = versions[change.version];
  if (existing) {
    if (existing.hash !== change.hash) {
      throw usage(
        `${model} ${change.version} is already published with other content (manifest ${existing.hash})`,
        'versions are immutable: publish a new version name',
      );
    }
    if (change.metadata !== undefined && !sameMetadata(existing.metadata, change.metadata)) {
      throw usage(
        `${model} ${change.version} is already published with other metadata`,
        'versions are immutable: publish a new version name, or drop --metadata',
      );
    }
  } else {
    versions[change.version] = {
      hash: change.hash,
      ...(change.metadata && Object.keys(change.metadata).length > 0 ? { metadata: change.metadata } : {}),
    };
  }
  for (const alias of change.aliases) versions[alias] = { hash: change.hash, alias_of: change.version };
}
