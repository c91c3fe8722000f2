/** What the zip and tar unpackers share for one extraction. */
import type { Budget } from './limits.js';
import type { EntrySink } from './sink.js';

export interface ArchiveContext {
  archivePath: string;
  /** The archive's name in messages (the URL's file name; the store names files by hash). */
  name: string;
  strip: number;
  budget: Budget;
  sink: EntrySink;
  signal: AbortSignal | undefined;
}
