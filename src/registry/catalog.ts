/**
 * The registry index, `models.json`: fetch it, parse defensively (a captive portal's HTML page, a
 * hash that is not a sha256, a wrong shape) and resolve a version or alias to a manifest hash.
 */
import { ModelsError } from '../util/errors.js';
import { isSha256 } from '../util/hash.js';
import type { RegistryClient } from './client.js';

export interface VersionEntry {
  hash: string;
  alias_of?: string;
  metadata?: Record<string, unknown>;
}
export type Catalog = Record<string, Record<string, Record<string, VersionEntry>>>;

export interface Resolution {
  model: string;
  version: string;
  resolved: string;
  manifest: string;
  metadata: Record<string, unknown>;
}

/** The index's name in a registry, next to data/. */
export const CATALOG_FILE = 'models.json';
export const MAX_INDEX_BYTES = 32 * 1024 * 1024;

function bad(url: string, problem: string, hint = 'the registry serves a malformed models.json; report it to its owner'): never {
  throw new ModelsError('E_INDEX', `invalid registry index ${url}: ${problem}`, { hint });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Metadata deeper than this is cut there: it is for people to read, and printing it must not overflow the stack. */
export const MAX_METADATA_DEPTH = 16;
export const TOO_DEEP = '[nested too deep]';

/** A copy of `value` with everything below `depth` more levels replaced by TOO_DEEP (recursion bounded by `depth`). */
function clampDepth(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth === 0) return TOO_DEEP;
  if (Array.isArray(value)) return value.map((item) => clampDepth(item, depth - 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) Object.defineProperty(out, key, { value: clampDepth(item, depth - 1), enumerable: true, writable: true, configurable: true });
  return out;
}

/**
 * Throws, through `fail`, the first thing wrong with the shape of a parsed models.json: an object of
 * groups, of models, of versions, each `{ hash, alias_of?, metadata? }`. It only reads, so a writer
 * (publish, mirror) can check the index it is about to rewrite and keep every field as it was.
 */
export function checkCatalogShape(data: unknown, fail: (problem: string) => never): asserts data is Catalog {
  if (!isPlainObject(data)) fail('expected an object of groups');
  for (const [group, models] of Object.entries(data)) {
    if (!isPlainObject(models)) fail(`"${group}" is not an object of models`);
    for (const [model, versions] of Object.entries(models)) {
      if (!isPlainObject(versions)) fail(`"${group}/${model}" is not an object of versions`);
      for (const [version, entry] of Object.entries(versions)) {
        const where = `"${group}/${model}@${version}"`;
        if (!isPlainObject(entry)) fail(`${where} is not an object`);
        if (!isSha256(entry.hash)) fail(`${where} has a hash that is not 64 lowercase hex`);
        if (entry.alias_of !== undefined && (typeof entry.alias_of !== 'string' || entry.alias_of.trim() === '')) fail(`${where} alias_of is not a version name`);
        if (entry.metadata !== undefined && !isPlainObject(entry.metadata)) fail(`${where} metadata is not an object`);
      }
    }
  }
}

/** The index a client reads: checked, and metadata cut at MAX_METADATA_DEPTH (only for reading: never written back). */
export function parseCatalog(bytes: Uint8Array, url: string): Catalog {
  const text = Buffer.from(bytes).toString('utf8');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    const start = text.trimStart().slice(0, 30);
    const html = /^<(!doctype|html)/i.test(start);
    bad(url, `not JSON (starts with ${JSON.stringify(start)})`, html
      ? 'an HTML page came back: a proxy or captive portal may be intercepting; check the network or the registry URL'
      : 'check that the registry URL points at an XPRIM registry (it must serve models.json)');
  }
  checkCatalogShape(data, (problem) => bad(url, problem));
  for (const models of Object.values(data)) {
    for (const versions of Object.values(models)) {
      for (const entry of Object.values(versions)) if (entry.metadata !== undefined) entry.metadata = clampDepth(entry.metadata, MAX_METADATA_DEPTH) as Record<string, unknown>;
    }
  }
  return data;
}

/** A registry's index, fetched through its client (mirrors, retries) and parsed; `url` is where it came from. */
export async function fetchCatalog(client: RegistryClient, label: string, signal?: AbortSignal): Promise<{ catalog: Catalog; url: string }> {
  const { bytes, url } = await client.fetchSmall(CATALOG_FILE, `registry index of ${label}`, MAX_INDEX_BYTES, signal);
  return { catalog: parseCatalog(bytes, url), url };
}

export function resolveVersion(catalog: Catalog, model: string, version: string, url: string): Resolution {
  const [group, name] = model.split('/') as [string, string];
  const versions = Object.hasOwn(catalog, group) && Object.hasOwn(catalog[group] as object, name) ? catalog[group]?.[name] : undefined;
  if (!versions) {
    throw new ModelsError('E_NOT_FOUND', `model ${model} not found in ${url}`, { hint: 'check the model name; `models list --remote` shows the catalog' });
  }
  const entry = Object.hasOwn(versions, version) ? versions[version] : undefined;
  if (!entry) {
    const available = Object.keys(versions).sort().join(', ');
    throw new ModelsError('E_NOT_FOUND', `version "${version}" of ${model} not found in ${url}`, { hint: `available: ${available}` });
  }
  const resolved = entry.alias_of ?? version;
  const target = entry.alias_of !== undefined && Object.hasOwn(versions, entry.alias_of) ? versions[entry.alias_of] : undefined;
  if (target && target.hash !== entry.hash) {
    bad(url, `alias ${model}@${version} points at ${entry.alias_of} but their hashes differ`);
  }
  return { model, version, resolved, manifest: entry.hash, metadata: { ...(target?.metadata ?? {}), ...(entry.metadata ?? {}) } };
}
