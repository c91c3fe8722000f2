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
