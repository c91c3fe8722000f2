/**
 * The programmatic API. The CLI and the GitHub Action are thin layers over exactly this.
 *
 *   const project = await loadProject('models.yaml');
 *   await lock(project);
 *   const result = await install(project, { frozen: true, onEvent, signal });
 */
import { install as installProject } from './install/install.js';
import type { InstallOptions, InstallResult } from './install/types.js';
import { loadProject, type Project } from './project/project.js';
import { type LockOptions, type LockResult, type OutdatedEntry, lockProject, outdated as outdatedProject } from './sources/lock-project.js';
import { Session, type SessionOptions } from './project/session.js';
import { type VerifyOptions, type VerifyReport, verifyProject } from './ops/verify/index.js';

export { ModelsError, ExitCode, isModelsError } from './util/errors.js';
export type { ErrorCode, ExitCodeValue } from './util/errors.js';
export { loadProject } from './project/project.js';
export type { Project } from './project/project.js';
export type { ProjectConfig, ModelEntry } from './project/config.js';
export type { Lockfile, LockedModel, LockedFile } from './project/lockfile.js';
export type { InstallOptions, InstallResult, InstallEvent, ModelResult, ModelSource } from './install/types.js';
export type { LockOptions, LockResult, LockChange, OutdatedEntry, OutdatedStatus } from './sources/lock-project.js';
export type { SessionOptions } from './project/session.js';
export type { RetryPolicy } from './registry/client.js';
export { add, remove } from './ops/add.js';
export type { AddRequest, AddOptions, AddResult, RemoveOptions, RemoveResult } from './ops/add.js';
export { publish } from './ops/publish.js';
export type { PublishOptions, PublishResult, PublishProgress } from './ops/publish.js';
export { publishOci } from './ops/publish-oci.js';
export type { PublishOciOptions, PublishOciResult } from './ops/publish-oci.js';
export type { Chunking } from './ops/chunker.js';
export { mirror } from './ops/mirror.js';
export type { MirrorOptions, MirrorResult, MirrorEvent, MirroredModel } from './ops/mirror.js';
export type { LinkMode } from './store/store.js';
export { VERSION } from './util/version.js';
export { selectEntries } from './install/entries.js';
export { defaultCacheDir } from './store/store.js';
export type { VerifyOptions, VerifyReport, VerifiedModel, VerifiedFile, VerifyFileStatus, VerifyModelStatus } from './ops/verify/index.js';
export { cacheInfo, verifyCache, pruneCache } from './ops/cache.js';
export type { CacheLocation, CacheVerifyOptions, CacheInfo, CacheVerifyResult, CacheProblem, PruneOptions, PruneResult, PrunedManifest } from './ops/cache.js';
export { doctor } from './ops/doctor.js';
export type { DoctorReport, DoctorCheck, DoctorOptions, CheckStatus, CheckArea } from './ops/doctor.js';
export { installStatuses, modelFolder, listRemote, modelInfo } from './ops/catalog-info.js';
export type { ModelStatus, InstallStatus, RemoteVersion, RemoteOptions, ModelInfo, InfoFile, ModelVersions, InfoOptions } from './ops/catalog-info.js';

async function projectOf(project: Project | string | undefined): Promise<Project> {
  return typeof project === 'object' ? project : loadProject(project);
}

/** Resolve models.yaml into models.lock (re-resolving everything or the named entries with `update`). */
export async function lock(project?: Project | string, options: LockOptions & SessionOptions = {}): Promise<LockResult> {
  const p = await projectOf(project);
  const session = new Session(p.config, options);
  try {
    return await lockProject(session, p, options);
  } finally {
    await session.close();
  }
}

/** Fetch, verify and place every locked model. Aborting (`signal`) leaves a state the next call resumes. */
export async function install(project?: Project | string, options: InstallOptions = {}): Promise<InstallResult> {
  return installProject(await projectOf(project), options);
}

/** Compare each locked model with what its registry resolves now. */
export async function outdated(project?: Project | string, options: SessionOptions & { signal?: AbortSignal } = {}): Promise<OutdatedEntry[]> {
  const p = await projectOf(project);
  const session = new Session(p.config, options);
  try {
    return await outdatedProject(session, p, options.signal);
  } finally {
    await session.close();
  }
}

/** Re-hash installed files against the lock; `report.exitCode` is 0, 4 (missing) or 6 (differs). Never throws for bad files. */
export async function verify(project?: Project | string, options: VerifyOptions = {}): Promise<VerifyReport> {
  return verifyProject(await projectOf(project), options);
}
