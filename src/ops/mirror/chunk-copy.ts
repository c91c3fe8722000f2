/**
 * Where a mirrored chunk comes from: already in the folder (right size), rebuilt from the shared
 * store (its pointer, or the stored files of a model that holds it), else fetched from a registry
 * through the model's client (mirrors, retries). Every copy is verified on its way in (ChunkFile).
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readSegments } from '../../fetch/fetch.js';
import { TransientError, describeNetworkError } from '../../net/http.js';
import type { RegistryClient } from '../../registry/client.js';
import { type ChunkSpan, type ManifestLayout, filesOverlapping } from '../../registry/manifest.js';
import type { Segment, Store } from '../../store/store.js';
import { ModelsError, abortError, isModelsError } from '../../util/errors.js';
import { ChunkMismatch, ChunkFile } from './chunk-file.js';

export type ChunkSource = 'present' | 'cache' | 'registry';

/** What the chunks of one model need to be found. */
export interface ChunkOrigin {
  store: Store;
  client: RegistryClient;
  dataDir: string;
  layout: ManifestLayout;
  /** sha256 of the model's files that its manifest does not record (learnt at install). */
  knownShas: Record<string, string>;
  /** For messages: "name (model@version)". */
  label: string;
}

/** Put the chunk into data/ unless it is there; says where its bytes came from. */
export async function mirrorChunk(origin: ChunkOrigin, chunk: ChunkSpan, signal: AbortSignal | undefined): Promise<ChunkSource> {
  if ((await sizeOf(join(origin.dataDir, chunk.hash))) === chunk.size) return 'present';
  const candidates = await storeCandidates(origin.store, origin.layout, origin.knownShas, chunk);
  if (await copyFromStore(candidates, origin.dataDir, chunk, signal)) return 'cache';
  await fetchFromRegistry(origin.client, origin.dataDir, chunk, origin.label, signal);
  return 'registry';
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

/** Where a chunk's bytes sit in the store: its pointer, else the stored files of the model that holds it. */
async function storeCandidates(store: Store, layout: ManifestLayout, knownShas: Record<string, string>, chunk: ChunkSpan): Promise<Segment[][]> {
  const candidates: Segment[][] = [];
  const pointer = await store.readPointer(chunk.hash);
  if (pointer) candidates.push(pointer.map((s) => ({ path: store.objectPath(s.file), offset: s.offset, length: s.length })));
  const segments: Segment[] = [];
  for (const file of filesOverlapping(layout, chunk)) {
    const from = Math.max(chunk.offset, file.offset);
    const to = Math.min(chunk.offset + chunk.size, file.offset + file.size);
    if (to <= from) continue;
    const sha = file.sha256 ?? knownShas[file.path];
    if (!sha || !(await store.hasObject(sha, file.size))) return candidates;
    segments.push({ path: store.objectPath(sha), offset: from - file.offset, length: to - from });
  }
  candidates.push(segments);
  return candidates;
}

async function copyFromStore(candidates: Segment[][], dataDir: string, chunk: ChunkSpan, signal: AbortSignal | undefined): Promise<boolean> {
  for (const segments of candidates) {
    const sink = await ChunkFile.create(dataDir, chunk.hash);
    try {
      for await (const part of readSegments(segments)) {
        if (signal?.aborted) throw abortError();
        await sink.write(part, chunk.size);
      }
    } catch (error) {
      await sink.discard();
      if (isModelsError(error)) throw error;
      continue; // a stale pointer or a pruned file: try the next way
    }
    if (await sink.commit(join(dataDir, chunk.hash), chunk.hash, chunk.size)) return true;
  }
  return false;
}

async function fetchFromRegistry(client: RegistryClient, dataDir: string, chunk: ChunkSpan, label: string, signal: AbortSignal | undefined): Promise<void> {
  const what = `chunk ${chunk.hash.slice(0, 12)} of ${label}`;
  const path = join(dataDir, chunk.hash);
  let lastUrl = '';
  for (let attempt = 0; ; attempt++) {
    const committed = await client.request(
      what,
      async (source) => {
        const opened = await source.open(`data/${chunk.hash}`, signal ? { signal } : {});
        if (!opened) return undefined;
        lastUrl = opened.url;
        const sink = await ChunkFile.create(dataDir, chunk.hash);
        try {
          for await (const part of opened.body) await sink.write(part, chunk.size);
        } catch (error) {
          opened.destroy();
          await sink.discard();
          if (error instanceof ChunkMismatch) return false;
          if (isModelsError(error) || signal?.aborted) throw error;
          throw new TransientError(describeNetworkError(error), opened.url);
        }
        return sink.commit(path, chunk.hash, chunk.size);
      },
      signal,
    );
    if (committed) return;
    if (attempt >= client.policy.integrityRetries) {
      throw new ModelsError('E_INTEGRITY', `${what}: bytes from ${lastUrl} do not match the chunk hash, ${attempt + 1} times`, {
        hint: 'the registry or a proxy serves corrupt bytes; try another mirror or report it to the registry owner',
      });
    }
  }
}

