/**
 * The one surface every source kind implements. A source says three things and nothing else:
 * `resolve` pins a models.yaml entry into its lock entry (`models lock`); `content` says, from the
 * lock entry, which bytes make up each file and where to fetch them (install, verify, repair);
 * `check` compares the pin with what the source says now (`models outdated`). Retries, resume,
 * the store, staging, promotion and install state are shared and know no kind.
 */
import type { ModelEntry, SourceKind } from '../project/config.js';
import type { LockedModel } from '../project/lockfile.js';
import type { Session } from '../project/session.js';
import type { RegistryClient } from '../registry/client.js';
import type { ManifestLayout } from '../registry/manifest.js';
import type { Store } from '../store/store.js';

export interface SourceContext {
  session: Session;
  signal?: AbortSignal | undefined;
  /** Answers shared by the entries of one run (an index fetched once per registry), keyed by the adapter. */
  memo: Map<string, Promise<unknown>>;
}

export interface ContentContext {
  session: Session;
  /** The store this run writes to (--no-cache: a temporary one). */
  store: Store;
  signal?: AbortSignal | undefined;
}

/** Files unpacked from one stored archive (a `url:` with `extract:`). */
export interface ArchiveContent {
  sha256: string;
  size: number;
  format: 'zip' | 'tar' | 'tar.gz';
  strip: number;
  /** The archive's file name, for messages. */
  name: string;
}

export interface ModelContent {
  /**
   * The model's files in order, and the objects ("chunks") whose bytes, in order, form them: an
   * XPRIM manifest, or one object per file for sources that serve whole files.
   */
  layout: ManifestLayout;
  /** Where the objects' bytes come from (`data/<sha256>` in registry terms), with retries and mirrors. */
  client: RegistryClient;
  /** Set when the files come out of an archive: the layout has no chunks then; the archive is fetched instead. */
  archive?: ArchiveContent;
  /**
   * Archives that each unpack the files named (OCI tar layers); the layout's other files are whole
   * objects fetched as usual. Their files may have chunks in the layout: they are never fetched as such.
   */
  archives?: (ArchiveContent & { files: string[] })[];
}

/** Every archive of a model and the files it unpacks (`files` undefined: all of them). */
export function archivesOf(content: Pick<ModelContent, 'archive' | 'archives'>): (ArchiveContent & { files?: string[] })[] {
  return [...(content.archive ? [content.archive] : []), ...(content.archives ?? [])];
}

export type CheckStatus = 'current' | 'outdated' | 'changed' | 'missing';

export interface CheckResult {
  status: CheckStatus;
  /** What the source names now, when it said. */
  latest?: { resolved: string; manifest: string };
  detail?: string;
}

export interface SourceAdapter {
  readonly kind: SourceKind;
  /** `previous`: the entry's lock entry before this resolve, when there is one (what may be reused). */
  resolve(ctx: SourceContext, entry: ModelEntry, previous?: LockedModel): Promise<LockedModel>;
  content(ctx: ContentContext, entry: ModelEntry | undefined, locked: LockedModel): Promise<ModelContent>;
  check(ctx: SourceContext, entry: ModelEntry, locked: LockedModel): Promise<CheckResult>;
}

/** "name (model@resolved)": how messages name a model. */
export function modelLabel(name: string, locked: Pick<LockedModel, 'model' | 'resolved'>): string {
  return `${name} (${locked.model}@${locked.resolved})`;
}
