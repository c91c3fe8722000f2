/**
 * Install progress. On a TTY: listr2, one task per model with bytes, percent, speed and ETA.
 * Elsewhere (CI, pipes): a line when a model starts and finishes, and at most one progress line per
 * model every few seconds, so CI logs stay short.
 */
import type { InstallEvent, ModelResult } from '../index.js';
import { formatBytes } from '../util/units.js';
import { type Output, printable } from './output.js';

const PLAIN_INTERVAL_MS = 5_000;

export interface ProgressView {
  onEvent(event: InstallEvent): void;
  /** Settle the display (success or failure). */
  finish(error?: unknown): Promise<void>;
}

interface ModelProgress {
  total: number;
  /** Bytes of the chunks this install brings in (all of them on a first install, fewer on an update). */
  needed: number;
  /** Of those, landed so far: fetched, copied from the cache, or left by an interrupted run. */
  done: number;
  /** Left by an interrupted run: part of `done`, but not of the speed. */
  resumed: number;
  started: number;
  lastLine: number;
}

function describeDone(result: ModelResult): string {
  const source =
    result.source === 'up-to-date'
      ? 'up to date'
      : result.source === 'cache'
        ? 'from cache'
        : `${formatBytes(result.bytesDownloaded)} downloaded${result.bytesFromCache > 0 ? `, ${formatBytes(result.bytesFromCache)} from cache` : ''}`;
  const repaired = result.repaired.length > 0 ? `, repaired ${result.repaired.join(', ')}` : '';
  return `${result.name} ${result.model}@${result.resolved} ${formatBytes(result.size)} (${source}${repaired}) ${result.source === 'up-to-date' ? '' : `in ${(result.durationMs / 1000).toFixed(1)}s`}`.trimEnd();
}

function rate(p: ModelProgress): string {
  const seconds = (Date.now() - p.started) / 1000;
  const speed = seconds > 0 ? Math.max(0, p.done - p.resumed) / seconds : 0;
  const left = Math.max(0, p.needed - p.done);
  const eta = speed > 0 ? `${Math.ceil(left / speed)}s` : '?';
  const percent = p.needed > 0 ? Math.min(100, Math.floor((p.done / p.needed) * 100)) : 100;
  return `${formatBytes(p.done)}/${formatBytes(p.needed)} ${percent}% ${formatBytes(Math.round(speed))}/s ETA ${eta}`;
}

export function plainProgress(out: Output): ProgressView {
  const models = new Map<string, ModelProgress>();
  return {
    onEvent(event) {
      if (event.type === 'start') {
        const now = Date.now();
        models.set(event.name, { total: event.totalBytes, needed: event.neededBytes, done: 0, resumed: 0, started: now, lastLine: now });
        out.info(`installing ${event.name} ${event.model}@${event.resolved} (${formatBytes(event.totalBytes)}${event.neededBytes < event.totalBytes ? `, ${formatBytes(event.neededBytes)} to fetch` : ''})`);
      } else if (event.type === 'progress') {
        const p = models.get(event.name);
        if (!p) return;
        p.done = event.doneBytes;
        p.resumed = event.resumedBytes;
        if (Date.now() - p.lastLine >= PLAIN_INTERVAL_MS) {
          p.lastLine = Date.now();
          out.info(`  ${event.name}: ${rate(p)}`);
        }
      } else if (event.type === 'done') {
        out.info(`installed ${describeDone(event.result)}`);
      } else if (event.type === 'skipped' && out.verbose) {
        out.info(`${describeDone(event.result)}`);
      } else if (event.type === 'locked' && event.written) {
        const removed = event.removed > 0 ? `, ${event.removed} removed` : '';
        out.info(`models.lock updated (${event.changes} change${event.changes === 1 ? '' : 's'}${removed})`);
      }
    },
    async finish() {},
  };
}

/** listr2 on a TTY: one line per model, redrawn in place. */
export async function interactiveProgress(names: string[]): Promise<ProgressView> {
  const { Listr } = await import('listr2');
  const models = new Map<string, ModelProgress>();
  const waiters = new Map<string, { resolve: (title: string) => void; reject: (error: unknown) => void; update?: (title: string) => void }>();
  let failed: unknown;
  const list = new Listr(
    names.map((name) => ({
      title: `${name}: waiting`,
      task: (_ctx: unknown, task: { title: string }) =>
        new Promise<void>((resolve, reject) => {
          waiters.set(name, {
            resolve: (title) => {
              task.title = printable(title);
              resolve();
            },
            reject,
            update: (title) => {
              task.title = printable(title);
            },
          });
        }),
    })),
    // listr2's own SIGINT handler would exit 127 at once, skipping our cleanup: Ctrl-C is handled in main.ts (exit 130).
    { concurrent: true, exitOnError: false, registerSignalListeners: false, rendererOptions: { collapseErrors: false } },
  );
  const running = list.run().catch(() => undefined);
  return {
    onEvent(event) {
      if (event.type === 'start') {
        models.set(event.name, { total: event.totalBytes, needed: event.neededBytes, done: 0, resumed: 0, started: Date.now(), lastLine: 0 });
        waiters.get(event.name)?.update?.(`${event.name} ${event.model}@${event.resolved}: starting`);
      } else if (event.type === 'progress') {
        const p = models.get(event.name);
        if (!p) return;
        p.done = event.doneBytes;
        p.resumed = event.resumedBytes;
        waiters.get(event.name)?.update?.(`${event.name}: ${rate(p)}`);
      } else if (event.type === 'done' || event.type === 'skipped') {
        waiters.get(event.result.name)?.resolve(describeDone(event.result));
        waiters.delete(event.result.name);
      }
    },
    async finish(error) {
      failed = error;
      for (const [name, waiter] of waiters) {
        if (failed) waiter.reject(new Error(`${name}: not installed`));
        else waiter.resolve(`${name}: not selected`);
      }
      waiters.clear();
      await running;
    },
  };
}
