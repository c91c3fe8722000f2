/**
 * Bounded concurrency over many items, in bounded memory: `concurrency` workers take the next item
 * when they finish one. `Promise.all(items.map(limit(...)))` instead creates a promise, a closure
 * and a queue entry per item up front; with 100,000 files the pending fs requests alone held
 * hundreds of MB (bench/many-files.mjs).
 */

/** How many file-system calls (stat, link, mkdir) a loop over a model's files keeps in flight. */
export const FS_CONCURRENCY = 32;

/**
 * Call `fn` for every item, at most `concurrency` at a time, in order of the items. On the first
 * failure no further item is started; the calls in flight are waited for (so the caller's clean-up
 * never races them), then that first error is thrown.
 */
export async function forEachLimited<T>(items: Iterable<T>, concurrency: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let index = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure) {
      const next = iterator.next();
      if (next.done) return;
      try {
        await fn(next.value, index++);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.floor(concurrency)) }, worker));
  if (failure) throw failure.error;
}

/**
 * How many synchronous metadata calls (lstat, link, rename) run between two turns of the event loop.
 * A cached inode's stat costs a few microseconds; through fs.promises the thread-pool round trip
 * costs many times that in main-thread time (2,000 files: 70 ms of 410, measured with --cpu-prof).
 * 512 keeps a batch at a few milliseconds, so progress, timers and Ctrl-C still run.
 */
export const SYNC_BATCH = 512;

/** Call a synchronous `fn` for every item, yielding to the event loop after every `SYNC_BATCH` items. */
export async function forEachInBatches<T>(items: readonly T[], fn: (item: T, index: number) => void): Promise<void> {
  for (let start = 0; start < items.length; start += SYNC_BATCH) {
    if (start > 0) await new Promise((resolve) => setImmediate(resolve));
    const end = Math.min(items.length, start + SYNC_BATCH);
    for (let i = start; i < end; i++) fn(items[i] as T, i);
  }
}
