/**
 * Where this machine has put blobs before: for each registry host, the repository each blob digest
 * was last published to (`<cache>/oci-blob-locations.json`). `models publish --to oci://` mounts a
 * blob from there rather than uploading it again, as oras-go's `MountFrom` suggests ("a database of
 * known locations of blobs"). Only a hint: a wrong or stale entry costs one declined mount (which
 * starts the upload anyway), so a lost update between two processes is harmless.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store } from '../store/store.js';
import { ensureDir, writeFileAtomic } from '../util/fsutil.js';

/** Digests remembered per host; the oldest are forgotten first. */
const MAX_PER_HOST = 20_000;

/** A repository name as `--mount-from` accepts it: an edited file cannot put spaces into a token scope. */
const REPOSITORY = /^[a-z0-9._-]+(?:\/[a-z0-9._-]+)*$/;

type Locations = Record<string, Record<string, string>>;

function fileOf(store: Store): string {
  return join(store.root, 'oci-blob-locations.json');
}

async function readAll(store: Store): Promise<Locations> {
  try {
    const data = JSON.parse(await readFile(fileOf(store), 'utf8')) as { version?: unknown; hosts?: unknown };
    return data.version === 1 && typeof data.hosts === 'object' && data.hosts !== null ? (data.hosts as Locations) : {};
  } catch {
    return {}; // none yet, or unreadable: no hints
  }
}

/** A host's digests, by own property only: a host called like an Object.prototype key has none. */
function ownEntry(hosts: Locations, host: string): Record<string, string> {
  return Object.hasOwn(hosts, host) && typeof hosts[host] === 'object' && hosts[host] !== null ? (hosts[host] as Record<string, string>) : {};
}

/** digest -> repository, for one registry host. */
export async function knownLocations(store: Store, host: string): Promise<Map<string, string>> {
  const hosts = await readAll(store);
  const entries = Object.entries(ownEntry(hosts, host)).filter(([digest, repo]) => digest.startsWith('sha256:') && typeof repo === 'string' && REPOSITORY.test(repo));
  return new Map(entries);
}

/** Remember that `repository` on `host` holds `digests` (best effort: a cache that cannot be written only loses the hint). */
export async function rememberLocations(store: Store, host: string, repository: string, digests: string[]): Promise<void> {
  try {
    const hosts = await readAll(store);
    const known = ownEntry(hosts, host);
    // Re-inserted at the end: the most recent publish of a digest is the one kept longest.
    for (const digest of digests) {
      delete known[digest];
      known[digest] = repository;
    }
    const names = Object.keys(known);
    for (const digest of names.slice(0, Math.max(0, names.length - MAX_PER_HOST))) delete known[digest];
    hosts[host] = known;
    await ensureDir(store.root);
    await writeFileAtomic(fileOf(store), `${JSON.stringify({ version: 1, hosts })}\n`, { durable: false });
  } catch {
    // only a hint
  }
}
