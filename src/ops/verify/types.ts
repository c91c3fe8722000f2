/** What `models verify` reports, per file and per model. */
export type VerifyFileStatus = 'ok' | 'missing' | 'modified' | 'corrupt';
export type VerifyModelStatus = 'ok' | 'missing' | 'corrupt';

export interface VerifiedFile {
  path: string;
  status: VerifyFileStatus;
  /** Expected size. */
  size: number;
  /** What is on disk, when it differs. */
  actualSize?: number;
  /** How the content was checked: a whole-file sha256, the manifest's chunk hashes, or (no hash known) the size only. */
  method: 'sha256' | 'chunks' | 'size';
  expectedSha256?: string;
  actualSha256?: string;
  detail?: string;
}

export interface VerifiedModel {
  name: string;
  model: string;
  resolved: string;
  manifest: string;
  /** Absolute install folder. */
  path: string;
  status: VerifyModelStatus;
  files: VerifiedFile[];
  detail?: string;
}

export interface VerifyReport {
  ok: boolean;
  /** 0, 4 (something missing) or 6 (something differs; wins over 4). */
  exitCode: 0 | 4 | 6;
  root: string;
  models: VerifiedModel[];
  filesChecked: number;
  bytesHashed: number;
  durationMs: number;
}

export interface VerifyOptions {
  /** Model names or tags; default every entry for this platform. */
  names?: string[];
  /** Install root (default: the configured root). */
  root?: string;
  /** Files hashed at once (default: min(4, CPUs)). */
  concurrency?: number;
  signal?: AbortSignal;
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Never fetch a manifest missing from the store (only needed for files without any known sha256). */
  offline?: boolean;
}

