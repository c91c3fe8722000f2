/**
 * Bounds on what one archive may expand to, so that a hostile archive (a zip bomb, millions of
 * entries, absurd names) is refused early instead of filling the disk or the memory.
 */
import { refuseEntry } from './rules.js';

export interface ArchiveLimits {
  /** Entries of any kind (files and folders). */
  maxEntries: number;
  /** Bytes of all extracted files together: the lock's declared total when it has one. */
  maxTotalBytes: number;
  /**
   * How many times its own size the archive may expand to (for zip, the sum of declared sizes; for
   * tar.gz, the decompressed stream). 100 is Apache POI's zip-bomb bound; real model archives (weights
   * barely compress) stay far below it. Expansion up to RATIO_GRACE_BYTES is always allowed, so
   * small archives of text files are never refused.
   */
  maxRatio: number;
  /** Bytes of all entry names together: bounds the memory the name checks and the file list take. */
  maxNameBytes: number;
}

export const DEFAULT_LIMITS: ArchiveLimits = {
  maxEntries: 100_000,
  maxTotalBytes: 64 * 1024 ** 3,
  maxRatio: 100,
  maxNameBytes: 32 * 1024 * 1024,
};

export const RATIO_GRACE_BYTES = 64 * 1024 * 1024;

const LIMIT_HINT = 'the archive is larger than its declaration or a decompression bomb; nothing was installed from it';

/** Counts one archive's entries and bytes against its limits; every method throws when one is exceeded. */
export class Budget {
  private entries = 0;
  private nameBytes = 0;
  private fileBytes = 0;
  private readonly expansionLimit: number;

  constructor(
    private readonly archive: string,
    readonly limits: ArchiveLimits,
    archiveSize: number,
  ) {
    this.expansionLimit = Math.max(archiveSize * limits.maxRatio, RATIO_GRACE_BYTES);
  }

  /** Before anything else is done with an entry. */
  entry(name: string): void {
    this.entries += 1;
    if (this.entries > this.limits.maxEntries) {
      throw refuseEntry(this.archive, undefined, `has more than ${this.limits.maxEntries} entries`, LIMIT_HINT);
    }
    this.nameBytes += Buffer.byteLength(name, 'utf8');
    if (this.nameBytes > this.limits.maxNameBytes) {
      throw refuseEntry(this.archive, undefined, `has more than ${this.limits.maxNameBytes} bytes of entry names`, LIMIT_HINT);
    }
  }

  /** A file's declared size, before any of its bytes are written. */
  file(name: string, size: number): void {
    this.fileBytes += size;
    if (this.fileBytes > this.limits.maxTotalBytes) {
      throw refuseEntry(this.archive, name, `takes the extracted size past the limit of ${this.limits.maxTotalBytes} bytes`, LIMIT_HINT);
    }
  }

  /** Bytes the archive has expanded to so far (declared for zip, decompressed for tar.gz). */
  expanded(bytes: number): void {
    if (bytes > this.expansionLimit) {
      throw refuseEntry(
        this.archive,
        undefined,
        `expands to more than ${this.limits.maxRatio} times its own size (${bytes} bytes or more, limit ${this.expansionLimit})`,
        LIMIT_HINT,
      );
    }
  }
}

export function resolveLimits(partial: Partial<ArchiveLimits> | undefined): ArchiveLimits {
  const limits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(partial ?? {}) as [keyof ArchiveLimits, number | undefined][]) {
    if (value !== undefined) limits[key] = value;
  }
  return limits;
}
