/** What `install` takes and reports: the options, the event stream and the per-model results. */
import type { ModelTarget } from './assemble.js';
import type { SessionOptions } from '../project/session.js';
import type { LinkMode } from '../store/store.js';

export interface InstallOptions extends SessionOptions {
  frozen?: boolean;
  /** Names or tags. */
  only?: string[];
  /** "os-arch", for `when:`. */
  platform?: string;
  /** Install here instead of the configured root (installer staging). */
  root?: string;
  noCache?: boolean;
  /** Re-hash installed files instead of trusting the recorded size + mtime. */
  verify?: boolean;
  limitRate?: number;
  linkMode?: LinkMode;
  lockTimeoutMs?: number;
  /** Move a destination the tool did not write aside (`<dest>.xprim-replaced-<time>`) instead of refusing. */
  force?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: InstallEvent) => void;
}

export type ModelSource = 'network' | 'cache' | 'mixed' | 'up-to-date';

export interface ModelResult {
  name: string;
  model: string;
  version: string;
  resolved: string;
  manifest: string;
  path: string;
  size: number;
  source: ModelSource;
  bytesDownloaded: number;
  bytesFromCache: number;
  durationMs: number;
  /** Files that were missing or modified and have been put back. */
  repaired: string[];
}

export type InstallEvent =
  | { type: 'locked'; changes: number; removed: number; written: boolean }
  | { type: 'removed'; name: string; path: string }
  | { type: 'start'; name: string; model: string; resolved: string; totalBytes: number; neededBytes: number }
  | { type: 'progress'; name: string; doneBytes: number; totalBytes: number; networkBytes: number; resumedBytes: number }
  | { type: 'done'; result: ModelResult }
  | { type: 'moved-aside'; name: string; from: string; to: string }
  | { type: 'warning'; name: string; message: string }
  | { type: 'skipped'; result: ModelResult };

export interface InstallResult {
  installed: ModelResult[];
  skipped: ModelResult[];
  removed: string[];
  /** --force: folders the tool did not write, moved aside rather than deleted. */
  movedAside: { name: string; from: string; to: string }[];
  /** Files of removed models left in place: not provably written by the tool (changed, or never recorded). */
  leftInPlace: string[];
  bytesDownloaded: number;
  bytesFromCache: number;
  durationMs: number;
  root: string;
  lockWritten: boolean;
}

export function resultFor(target: ModelTarget, size: number, source: ModelSource, network: number, cache: number, durationMs: number, repaired: string[]): ModelResult {
  return {
    name: target.name,
    model: target.model,
    version: target.version,
    resolved: target.resolved,
    manifest: target.manifest,
    path: target.dest,
    size,
    source,
    bytesDownloaded: network,
    bytesFromCache: Math.max(0, cache),
    durationMs: Math.round(durationMs),
    repaired,
  };
}
