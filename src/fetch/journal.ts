/**
 * The resume journal of one download: an append-only record, beside the partial files, of every
 * verified chunk and, every MiB, the progress of a chunk in flight with the server's validator.
 * Read back whole lines only: a line torn by a crash (and anything after it) is ignored.
 */
import { type FileHandle, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { storageError } from '../util/errors.js';

/** `done\tN`, `undo\tN` or `prog\tN\tBYTES\t"validator"`, as written below. */
const JOURNAL_LINE = /^(done|undo|prog)\t(\d{1,15})(?:\t(\d{1,15})\t("(?:[^"\\]|\\.)*"))?$/;

/** Append-only record of verified chunks and in-flight progress for one manifest. */
export class Journal {
  readonly done = new Set<number>();
  readonly progress = new Map<number, { bytes: number; validator: string }>();
  private constructor(
    private readonly handle: FileHandle,
    readonly resumed: boolean,
    private readonly path: string,
  ) {}

  /** Disk full or read-only while journaling is a storage failure (exit 7), not a network one. */
  private async append(line: string): Promise<void> {
    try {
      await this.handle.appendFile(line);
    } catch (error) {
      throw storageError(error, 'write', this.path);
    }
  }

  static async open(dir: string): Promise<Journal> {
    const path = join(dir, 'journal');
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch {
      // a fresh download
    }
    const handle = await open(path, 'a').catch((error: unknown) => {
      throw storageError(error, 'create', path);
    });
    const journal = new Journal(handle, text.length > 0, path);
    try {
      const lines = text.split('\n');
      // Every record ends with a newline: what follows the last one is a line torn by a crash
      // (`done\t12` cut to `done\t1` would lie). Drop it, and end it so the next record starts afresh.
      const torn = lines.pop();
      for (const line of lines) journal.replay(line);
      if (torn) await journal.append('\n');
    } catch (error) {
      await journal.close();
      throw error;
    }
    return journal;
  }

  /**
   * Apply one journal line. Anything that is not exactly a record this code writes (a line cut by a
   * power loss, zeros from a lost page, garbage) is skipped: at worst a chunk is fetched again.
   */
  private replay(line: string): void {
    const match = JOURNAL_LINE.exec(line);
    if (!match) return;
    const [, kind, indexText, bytesText, validatorJson] = match;
    if ((kind === 'prog') !== (validatorJson !== undefined)) return;
    const index = Number(indexText);
    if (!Number.isSafeInteger(index)) return;
    if (kind === 'done') {
      this.done.add(index);
      this.progress.delete(index);
    } else if (kind === 'undo') {
      this.done.delete(index);
      this.progress.delete(index);
    } else {
      const bytes = Number(bytesText);
      let validator: unknown;
      try {
        validator = JSON.parse(validatorJson as string);
      } catch {
        return;
      }
      if (Number.isSafeInteger(bytes) && typeof validator === 'string' && validator !== '') this.progress.set(index, { bytes, validator });
    }
  }

  async markDone(index: number): Promise<void> {
    this.done.add(index);
    this.progress.delete(index);
    await this.append(`done\t${index}\n`);
  }

  async forget(index: number): Promise<void> {
    this.done.delete(index);
    this.progress.delete(index);
    await this.append(`undo\t${index}\n`);
  }

  async markProgress(index: number, bytes: number, validator: string): Promise<void> {
    this.progress.set(index, { bytes, validator });
    await this.append(`prog\t${index}\t${bytes}\t${JSON.stringify(validator)}\n`);
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

