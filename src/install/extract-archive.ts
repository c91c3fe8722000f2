/**
 * Files of an archive model (a `url:` with `extract:`): fetch the archive into the store through the
 * fetch engine (resumable, verified by its sha256) unless it is there, unpack it into a scratch
 * folder in the store, check every file the lock names against its size and sha256, and move those
 * into the store. A repair re-extracts from the stored archive with no download.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelsError } from '../util/errors.js';
import { extractArchive } from '../archive/extract.js';
import type { ArchiveContent } from '../sources/index.js';
import { wholeFileLayout } from '../sources/whole-files.js';
import type { AssembleEnv, FileSource, ModelPlan } from './assemble.js';
import { fetchMissing } from './fetch-missing.js';

/** `archive.files`: the files this archive unpacks (undefined: every file still to extract). */
export async function extractMissing(env: AssembleEnv, plan: ModelPlan, archive: ArchiveContent & { files?: string[] }): Promise<void> {
  const only = archive.files ? new Set(archive.files) : undefined;
  const wanted = plan.layout.files.filter((f) => plan.sources[f.index]?.kind === 'extract' && (!only || only.has(f.path)));
  if (wanted.length === 0) return;
  await ensureArchive(env, plan, archive);
  const scratch = join(await env.store.preparePartialDir(plan.target.manifest), `x-${randomBytes(4).toString('hex')}`);
  try {
    const extracted = await extractArchive({
      archivePath: env.store.objectPath(archive.sha256),
      name: archive.name,
      format: archive.format,
      strip: archive.strip,
      destDir: scratch,
      ...(env.signal ? { signal: env.signal } : {}),
    });
    const byPath = new Map(extracted.map((f) => [f.path, f]));
    for (const file of wanted) {
      const got = byPath.get(file.path);
      const expected = plan.shas[file.index];
      if (!got || got.size !== file.size || (expected && got.sha256 !== expected)) {
        await env.store.removeObject(archive.sha256);
        throw new ModelsError('E_INTEGRITY', `${plan.target.name}: ${file.path} in ${archive.name} ${got ? `has sha256 ${got.sha256} (${got.size} bytes), the lock says ${expected ?? '?'} (${file.size} bytes)` : 'is missing'}`, {
          hint: 'the stored archive was removed: run the install again; if it repeats, models.lock does not match the archive (run `models lock --update`)',
        });
      }
      await env.store.putObject(join(scratch, file.path), got.sha256);
      plan.sources[file.index] = { kind: 'store', sha: got.sha256 } satisfies FileSource;
    }
  } finally {
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** The archive in the store, verified: fetched when absent or when its bytes changed since stored. */
async function ensureArchive(env: AssembleEnv, plan: ModelPlan, archive: ArchiveContent): Promise<void> {
  if ((await env.store.trustObject(archive.sha256, archive.size, undefined)) === 'ok') return;
  const layout = wholeFileLayout([{ path: archive.name.replace(/[/\\]/g, '_') || 'archive', size: archive.size, sha256: archive.sha256 }], archive.sha256);
  const fetchPlan: ModelPlan = {
    target: { ...plan.target, manifest: archive.sha256 },
    content: { ...plan.content, layout },
    layout,
    shas: [archive.sha256],
    sources: [{ kind: 'fetch' }],
    neededBytes: archive.size,
    fetchBytes: archive.size,
  };
  await fetchMissing(env, fetchPlan);
}
