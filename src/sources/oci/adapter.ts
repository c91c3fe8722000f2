/**
 * `oci:` and `ollama:` sources: an artifact in any OCI registry (GHCR, ECR, Harbor, Docker Hub,
 * Ollama's). `resolve` asks what the tag points at now and pins that manifest digest and every file;
 * `content` reads the manifest by digest (from the store, else the registry: never the tag) and
 * maps each file to its blob or tar layer; `check` asks the tag again.
 */
import type { ModelEntry, OciSpec } from '../../project/config.js';
import { type LockedModel, entrySpecHash } from '../../project/lockfile.js';
import { type LockedPin, describePin } from '../../project/pins.js';
import { ModelsError, isModelsError } from '../../util/errors.js';
import type { CheckResult, ContentContext, ModelContent, SourceAdapter, SourceContext } from '../adapter.js';
import { wholeFileLayout } from '../whole-files.js';
import { blobClient } from './blobs.js';
import { type ImageManifest, selectManifest } from './document.js';
import { filesOfLayers } from './files.js';
import { contentOf } from './content.js';
import { layoutOf } from './layouts/index.js';
import { layersOfManifest } from './layers.js';
import { type FetchedManifest, fetchManifest, keepManifest } from './manifest-fetch.js';
import { type OciReference, describeReference, manifestRef, parseReference } from './reference.js';
import { parsePlatform } from '../../project/platform.js';
import type { Session } from '../../project/session.js';

function specOf(entry: ModelEntry): OciSpec {
  if (entry.source?.kind !== 'oci') throw new ModelsError('E_INTERNAL', `${entry.name}: not an oci: entry`);
  return entry.source;
}

/**
 * The platform an index is narrowed by: the entry's `when:` when it names one os and one arch, else
 * --platform, else this machine's. `pinned` (the lock's os/arch) wins when checking a pin.
 */
function platformOf(session: Session, entry: ModelEntry, pinned?: string): { os: string; arch: string } {
  if (pinned) {
    // Already OCI's names, which selectManifest's mapping leaves as they are.
    const [os = '', arch = ''] = pinned.split('/');
    return { os, arch };
  }
  const target = session.options.platform ? parsePlatform(session.options.platform) : { os: process.platform, arch: process.arch };
  const { os, arch } = entry.when ?? {};
  return { os: os?.length === 1 ? (os[0] as string) : target.os, arch: arch?.length === 1 ? (arch[0] as string) : target.arch };
}

/** What the reference names now: a manifest (an index narrowed to one, whose platform is said), with its digest. */
async function current(session: Session, entry: ModelEntry, ref: OciReference, signal?: AbortSignal, pinned?: string): Promise<FetchedManifest & { document: ImageManifest; platform?: string }> {
  const fetched = await fetchManifest(session, ref, manifestRef(ref), signal);
  if (fetched.document.kind !== 'index') return fetched as FetchedManifest & { document: ImageManifest };
  const chosen = selectManifest(fetched.document, platformOf(session, entry, pinned), describeReference(ref));
  const inner = await fetchManifest(session, ref, chosen.digest, signal);
  if (inner.document.kind === 'index') throw new ModelsError('E_MANIFEST', `${describeReference(ref)}: an index inside an index is not supported`, { hint: 'pin the manifest by digest: oci: HOST/REPO@sha256:…' });
  const p = chosen.platform;
  return { ...(inner as FetchedManifest & { document: ImageManifest }), ...(p?.os && p.architecture ? { platform: [p.os, p.architecture, p.variant].filter(Boolean).join('/') } : {}) };
}

async function resolve(ctx: SourceContext, entry: ModelEntry): Promise<LockedModel> {
  const spec = specOf(entry);
  const ref = parseReference(spec.reference, `oci ${spec.reference}`);
  const { session } = ctx;
  const fetched = await current(session, entry, ref, ctx.signal);
  await keepManifest(session.store, fetched);
  const where = `${spec.ollama ? `ollama ${spec.ollama}` : describeReference(ref)} (${fetched.digest.slice(0, 19)})`;
  const layout = layoutOf(fetched.document);
  const layers = await layersOfManifest(session, session.store, ref, fetched.document, layout, where, ctx.signal);
  const files = await filesOfLayers({ session, ref, layers, files: spec.files, exclude: spec.exclude, where, signal: ctx.signal });
  const pin: LockedPin = { reference: spec.reference, digest: fetched.digest, layout, ...(fetched.platform ? { platform: fetched.platform } : {}) };
  return {
    spec: entrySpecHash(entry),
    kind: 'oci',
    ...describePin('oci', pin),
    manifest: fetched.digest.slice('sha256:'.length),
    size: files.reduce((sum, f) => sum + f.size, 0),
    files,
    pin,
  };
}

async function content(ctx: ContentContext, entry: ModelEntry | undefined, locked: LockedModel): Promise<ModelContent> {
  const { archives, digests, ref } = await contentOf(ctx, entry?.name ?? locked.model, locked);
  return {
    layout: wholeFileLayout(locked.files, locked.manifest),
    client: blobClient(ctx.session, ref, digests),
    ...(archives.length > 0 ? { archives } : {}),
  };
}

async function check(ctx: SourceContext, entry: ModelEntry, locked: LockedModel): Promise<CheckResult> {
  const ref = parseReference(specOf(entry).reference);
  const pinned = String(locked.pin?.digest ?? '');
  const lockedNow = { resolved: pinned, manifest: locked.manifest };
  // A digest names one manifest forever.
  if (ref.digest) return { status: 'current', latest: lockedNow };
  let now;
  try {
    // Narrowed for the platform the lock pinned, not this machine's: else every other platform reads as moved.
    now = await current(ctx.session, entry, ref, ctx.signal, typeof locked.pin?.platform === 'string' ? locked.pin.platform : undefined);
  } catch (error) {
    if (isModelsError(error) && error.code === 'E_NOT_FOUND') return { status: 'missing', detail: error.message };
    throw error;
  }
  const latest = { resolved: now.digest, manifest: now.digest.slice('sha256:'.length) };
  if (now.digest === pinned) return { status: 'current', latest };
  return { status: 'outdated', latest, detail: `${describeReference(ref)} now points at ${now.digest}` };
}

export const ociSource: SourceAdapter = { kind: 'oci', resolve, content, check };
