/**
 * forEachLimited (src/util/pool.ts): the loop every per-file pass of an install runs through. It
 * must keep at most `concurrency` calls in flight and take items lazily (no promise per item up
 * front: 100,000 pending stats held hundreds of MB), stop at the first failure and wait for what
 * is in flight before it rejects (the caller then removes the staging folder those calls write in).
 * forEachInBatches: the synchronous metadata passes (lstat, link, stat per file) must still let the
 * event loop run (progress, timers, Ctrl-C) between batches.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { SYNC_BATCH, forEachInBatches, forEachLimited } from '../src/util/pool.js';

describe('forEachLimited', () => {
  it('calls fn once per item, in order of the items, with its index, never more than `concurrency` at a time', async () => {
    const started: number[] = [];
    let running = 0;
    let most = 0;
    await forEachLimited([10, 11, 12, 13, 14, 15, 16], 3, async (item, index) => {
      expect(item - 10).toBe(index);
      started.push(item);
      most = Math.max(most, ++running);
      await sleep(5 + (item % 3));
      running--;
    });
    expect(started).toEqual([10, 11, 12, 13, 14, 15, 16]);
    expect(most).toBe(3);
  });

  it('takes items from the iterable only as workers free up: nothing is queued ahead', async () => {
    let pulled = 0;
    let done = 0;
    let aheadMost = 0;
    function* items(): Generator<number> {
      for (let i = 0; i < 1000; i++) {
        pulled++;
        aheadMost = Math.max(aheadMost, pulled - done);
        yield i;
      }
    }
    await forEachLimited(items(), 4, async () => {
      await sleep(0);
      done++;
    });
    expect(done).toBe(1000);
    expect(aheadMost).toBeLessThanOrEqual(4);
  });

  it('on the first failure starts nothing more, waits for the calls in flight, then throws that failure', async () => {
    const started = new Set<number>();
    const finished = new Set<number>();
    const run = forEachLimited(Array.from({ length: 100 }, (_, i) => i), 4, async (i) => {
      started.add(i);
      if (i === 5) throw new Error('five');
      if (i === 9) throw new Error('nine, later');
      await sleep(i === 4 ? 60 : 20);
      finished.add(i);
    });
    const error = await run.catch((e: Error) => e);
    expect((error as Error).message).toBe('five');
    // Item 4 was still sleeping when 5 failed: the rejection waited for it.
    expect(finished.has(4)).toBe(true);
    expect([...started].filter((i) => i !== 5).every((i) => finished.has(i))).toBe(true);
    expect(started.size).toBeLessThan(10);
  });

  it('an empty list resolves at once; a concurrency below 1 still makes progress', async () => {
    await forEachLimited([], 8, () => Promise.reject(new Error('never called')));
    const seen: number[] = [];
    await forEachLimited([1, 2], 0, async (i) => void seen.push(i));
    expect(seen).toEqual([1, 2]);
  });
});

describe('forEachInBatches', () => {
  it('calls fn once per item, in order, with its index, and lets the event loop run between batches', async () => {
    const items = Array.from({ length: SYNC_BATCH * 2 + 3 }, (_, i) => i);
    const seen: number[] = [];
    const turns: number[] = []; // how many items had been seen each time an immediate ran
    const tick = (): void => {
      turns.push(seen.length);
      if (seen.length < items.length) setImmediate(tick);
    };
    setImmediate(tick);
    await forEachInBatches(items, (item, index) => {
      expect(index).toBe(item);
      seen.push(item);
    });
    expect(seen).toEqual(items);
    // Without the yields the first turn would come only after the last item.
    expect(turns.slice(0, 2)).toEqual([SYNC_BATCH, SYNC_BATCH * 2]);
  });

  it('stops at the first item that throws, and rejects with its error', async () => {
    const seen: number[] = [];
    await expect(
      forEachInBatches([1, 2, 3, 4], (item) => {
        if (item === 3) throw new Error('item 3');
        seen.push(item);
      }),
    ).rejects.toThrow('item 3');
    expect(seen).toEqual([1, 2]);
  });
});
