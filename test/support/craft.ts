/** Registry folders written byte by byte in the XPRIM format, for tests that need exact (or hostile) content. */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const sha = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

export interface CraftVersion {
  files: Record<string, Buffer | string>;
  metadata?: Record<string, unknown>;
  alias_of?: string;
}

/**
 * Write `models.json`, manifests and chunks (fixed-size chunks over the files' byte stream) into
 * `dir`. Returns each `group/model@version`'s manifest hash. Extra raw index text can replace the
 * generated models.json with `index`.
 */
export async function craftRegistry(dir: string, models: Record<string, Record<string, CraftVersion>>, options: { chunkSize?: number } = {}): Promise<Record<string, string>> {
  const chunkSize = options.chunkSize ?? 64 * 1024;
  await mkdir(join(dir, 'data'), { recursive: true });
  const index: Record<string, Record<string, Record<string, unknown>>> = Object.create(null) as Record<string, Record<string, Record<string, unknown>>>;
  const hashes: Record<string, string> = {};
  for (const [model, versions] of Object.entries(models)) {
    const [group, name] = model.split('/') as [string, string];
    for (const [version, spec] of Object.entries(versions)) {
      const files = Object.entries(spec.files).map(([path, content]) => ({ path, bytes: Buffer.from(content) }));
      const stream = Buffer.concat(files.map((f) => f.bytes));
      const chunks: string[] = [];
      for (let at = 0; at < stream.length; at += chunkSize) {
        const chunk = stream.subarray(at, at + chunkSize);
        chunks.push(sha(chunk));
        await writeFile(join(dir, 'data', sha(chunk)), chunk);
      }
      const manifest = JSON.stringify({ total_size: stream.length, chunk_size: chunkSize, chunks, files: files.map((f) => ({ path: f.path, size: f.bytes.length, sha256: sha(f.bytes) })) });
      const hash = sha(manifest);
      await writeFile(join(dir, 'data', hash), manifest);
      hashes[`${model}@${version}`] = hash;
      // Own properties only: a model or version may be called "constructor".
      const models = Object.hasOwn(index, group) ? (index[group] as Record<string, Record<string, unknown>>) : (index[group] = Object.create(null) as Record<string, Record<string, unknown>>);
      const versionsOf = Object.hasOwn(models, name) ? (models[name] as Record<string, unknown>) : (models[name] = Object.create(null) as Record<string, unknown>);
      versionsOf[version] = { hash, ...(spec.metadata ? { metadata: spec.metadata } : {}), ...(spec.alias_of ? { alias_of: spec.alias_of } : {}) };
    }
  }
  for (const [key, hash] of Object.entries(hashes)) {
    // An alias carries its target's hash.
    const [model, version] = key.split('@') as [string, string];
    const [group, name] = model.split('/') as [string, string];
    const entry = index[group]?.[name]?.[version] as { alias_of?: string; hash: string };
    if (entry.alias_of) entry.hash = hashes[`${model}@${entry.alias_of}`] ?? hash;
  }
  await writeFile(join(dir, 'models.json'), JSON.stringify(index));
  return hashes;
}
