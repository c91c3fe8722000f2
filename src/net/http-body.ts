/**
 * What stands between undici and a reader of a response body: a small read-ahead (so undici is never
 * left paused at the end of a response) and a low-speed limit (so a trickling server is dropped).
 */
import { PassThrough, type Readable } from 'node:stream';

export const BODY_HIGH_WATER = 64 * 1024;
/** Read-ahead kept between undici and a slow reader; more than undici's buffer plus one socket read. */
const READ_AHEAD = 256 * 1024;
/** Parts (socket reads, up to 64 KiB each) queued on the reading side. */
const READ_AHEAD_PARTS = 4;

/** curl's --speed-limit / --speed-time: a body slower than this, for this long, is abandoned. */
export interface LowSpeed {
  /** 0 turns the check off. */
  bytesPerSecond: number;
  windowMs: number;
}

/** A body dropped for being too slow: worth retrying, but not progress, however many bytes it brought. */
export class LowSpeedError extends Error {
  constructor(
    message: string,
    readonly url: string,
  ) {
    super(message);
    this.name = 'LowSpeedError';
  }
}

/**
 * undici 7 kills the process (`assert(!this.paused)`, nodejs/undici#5360; fixed only in undici 8,
 * which needs Node 22) when a server closes the connection right after the last body byte
 * (HTTP/1.0, `Connection: close`: python3 -m http.server) while a slow reader (--limit-rate, a slow
 * disk) has paused the response. So the reader never pauses undici near the end: the body is pulled
 * into a small read-ahead, and paused only while more than READ_AHEAD bytes are still to come.
 */
export interface GuardOptions {
  /** Content-Length, when the server sent one. */
  length: number | undefined;
  lowSpeed: LowSpeed | undefined;
  /** For messages (already redacted). */
  url: string;
  /** Told once, when the body ended (`complete`) or was closed early, with the bytes it brought. */
  onDone?: (bytes: number, complete: boolean) => void;
}

export function guardBody(body: Readable, { length, lowSpeed, url, onDone }: GuardOptions): Readable {
  // Parts come out one at a time, as undici delivered them: a byte-mode reader would concatenate
  // whatever is buffered into a new Buffer on every read (a copy of every byte, and garbage).
  const out = new PassThrough({ writableHighWaterMark: READ_AHEAD, readableObjectMode: true, readableHighWaterMark: READ_AHEAD_PARTS });
  let pulled = 0;
  const resume = () => body.resume();
  body.on('data', (part: Buffer) => {
    pulled += part.byteLength;
    if (!out.write(part) && (length === undefined || length - pulled > READ_AHEAD)) {
      body.pause();
      out.once('drain', resume);
    }
  });
  body.on('end', () => out.end());
  body.on('error', (error) => out.destroy(error));
  const stopWatching = lowSpeed && lowSpeed.bytesPerSecond > 0 ? watchSpeed(body, () => pulled, lowSpeed, (error) => out.destroy(error), url) : undefined;
  let told = false;
  const done = () => {
    if (told) return;
    told = true;
    onDone?.(pulled, body.readableEnded);
  };
  out.on('close', () => {
    stopWatching?.();
    done();
    if (!body.readableEnded) body.destroy();
  });
  // A reader that gives up early (destroy without an error) must not leave an 'error' unhandled.
  body.on('close', () => {
    stopWatching?.();
    done();
    if (!body.readableEnded && !out.destroyed) out.destroy(new Error('the response closed early'));
  });
  return out;
}

/**
 * Fail the body when, over the last `windowMs`, it brought fewer than `bytesPerSecond`. Time while we
 * paused it ourselves (a full read-ahead: --limit-rate, a slow disk) is not the server's fault and
 * does not count. Returns the function that stops watching.
 */
function watchSpeed(body: Readable, received: () => number, limit: LowSpeed, fail: (error: Error) => void, url: string): () => void {
  const tickMs = Math.max(10, Math.min(1000, limit.windowMs / 10));
  let samples = [{ at: Date.now(), bytes: 0 }];
  const timer = setInterval(() => {
    const now = Date.now();
    if (body.isPaused()) {
      samples = [{ at: now, bytes: received() }];
      return;
    }
    samples.push({ at: now, bytes: received() });
    while (samples.length > 2 && now - (samples[1] as { at: number }).at >= limit.windowMs) samples.shift();
    const first = samples[0] as { at: number; bytes: number };
    const seconds = (now - first.at) / 1000;
    if (now - first.at >= limit.windowMs && (received() - first.bytes) / seconds < limit.bytesPerSecond) {
      clearInterval(timer);
      const rate = Math.round((received() - first.bytes) / seconds);
      fail(new LowSpeedError(`${url}: ${rate} bytes/s for ${seconds.toFixed(1)} s, below the low-speed limit of ${limit.bytesPerSecond} bytes/s (MODELS_SPEED_LIMIT, MODELS_SPEED_TIME)`, url));
    }
  }, tickMs);
  timer.unref();
  return () => clearInterval(timer);
}
