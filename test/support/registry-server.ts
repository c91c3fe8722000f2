/**
 * A static HTTP server for XPRIM registry folders, for tests: behaves like nginx/S3/a CDN
 * (ETag, Last-Modified, Range, If-Range, conditional GET, HEAD) and can inject faults.
 */
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join, sep } from 'node:path';

export interface RequestRecord {
  method: string;
  /** Raw request path without the query string. */
  path: string;
  range?: string;
  ifRange?: string;
  authorization?: string;
  /** Status sent, or 0 when the socket was reset before any header. */
  status: number;
  /** Body bytes handed to the socket. */
  bytesSent: number;
  /** The fault injected into this request, if any. */
  fault?: Fault['kind'];
  /** True when the response did not complete (client abort, reset, truncate, server close). */
  aborted: boolean;
}

export type Fault =
  /** Answer with this status instead of the file (e.g. 500, 503, 429 + Retry-After, 404, 403). */
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  /** TCP reset: before any header, or after `afterBytes` body bytes. */
  | { kind: 'reset'; afterBytes?: number }
  /** Full Content-Length header, then the connection is closed cleanly after `afterBytes` body bytes. */
  | { kind: 'truncate'; afterBytes: number }
  /** Flip one byte of the body (at `at` modulo the body length; default its middle); same length, same status. */
  | { kind: 'corrupt'; at?: number }
  /** Stop sending (before headers, or after `afterBytes` body bytes) for `ms`, or until the client gives up. */
  | { kind: 'stall'; afterBytes?: number; ms?: number }
  /** A 200 text/html captive-portal page instead of the file. */
  | { kind: 'html' }
  /** Redirect (default 302) to `location`, absolute or relative. */
  | { kind: 'redirect'; location: string; status?: number };

export interface FaultRequest {
  path: string;
  /** 1-based count of requests seen for this path (since start or the last reset()). */
  attempt: number;
  method: string;
}

export interface ServerOptions {
  /** The registry folder (models.json, data/<sha256>). */
  root: string;
  /**
   * Called once per request; return a fault to inject or undefined to serve normally.
   * status/html/redirect/reset-without-afterBytes act like an intermediary (proxy, CDN, portal) and
   * win over auth and 404; body faults (reset/truncate/stall with afterBytes, corrupt) only affect a
   * non-empty 200/206 file body (a reset with afterBytes on HEAD or an empty file resets before the
   * headers), and are clamped so they always bite (a cut-off at or past the end moves to the last
   * byte). A stall without afterBytes holds the request before any header. `record.fault` is set
   * whenever a fault was returned, even one that had nothing to act on.
   */
  fault?: (req: FaultRequest) => Fault | undefined;
  /** Default true: a strong ETag from size + mtime. */
  etag?: boolean;
  /** Default true. */
  lastModified?: boolean;
  /** Default true: single byte ranges, 206/416, If-Range. When false, Range is ignored. */
  ranges?: boolean;
  /** When set, 401 unless `Authorization: Bearer <token>`. */
  requireToken?: string;
  /** Throttle body bytes to about this rate. */
  bytesPerSecond?: number;
  /** Listen on this port (e.g. to come back after an outage); default any free port. */
  port?: number;
}

export interface RegistryServer {
  /** http://127.0.0.1:PORT, no trailing slash. */
  url: string;
  /** Completed requests, in completion order. */
  requests: RequestRecord[];
  /** Number of recorded requests whose path starts with the prefix (all when omitted). */
  count(pathPrefix?: string): number;
  /** Clear the request log and the per-path attempt counters; requests in flight are not logged. */
  reset(): void;
  /** Resolves when no request is in flight (every request so far is in `requests`). */
  settled(): Promise<void>;
  /** Stop listening and destroy every socket, stalled ones included. */
  close(): Promise<void>;
}

const CAPTIVE_PORTAL_HTML =
  '<!DOCTYPE html>\n<html><head><title>Sign in to Wi-Fi</title></head>' +
  '<body><h1>Welcome!</h1><p>Please accept the terms of use to continue.</p></body></html>\n';

interface FileTarget {
  file: string;
  stats: Stats;
}

type RangeResult = { kind: 'none' } | { kind: 'range'; start: number; end: number } | { kind: 'unsatisfiable' };

export async function startRegistryServer(options: ServerOptions): Promise<RegistryServer> {
  const root = await realpath(options.root);
  const useEtag = options.etag ?? true;
  const useLastModified = options.lastModified ?? true;
  const useRanges = options.ranges ?? true;

  const requests: RequestRecord[] = [];
  const attempts = new Map<string, number>();
  const sockets = new Set<Socket>();
  let inFlight = 0;
  let idleWaiters: Array<() => void> = [];
  let closing = false;
  // Requests still in flight at reset() are not logged afterwards.
  let epoch = 0;
  const abortAll = new AbortController();

  const server = createServer((req, res) => {
    inFlight++;
    const startedIn = epoch;
    const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
    const record: RequestRecord = {
      method: req.method ?? 'GET',
      path: rawPath,
      status: 0,
      bytesSent: 0,
      aborted: false,
    };
    const range = header(req, 'range');
    if (range !== undefined) record.range = range;
    const ifRange = header(req, 'if-range');
    if (ifRange !== undefined) record.ifRange = ifRange;
    const authorization = header(req, 'authorization');
    if (authorization !== undefined) record.authorization = authorization;

    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      record.status = res.headersSent ? res.statusCode : 0;
      if (!res.writableFinished) record.aborted = true;
      if (startedIn === epoch) requests.push(record);
      inFlight--;
      if (inFlight === 0) {
        const waiters = idleWaiters;
        idleWaiters = [];
        for (const w of waiters) w();
      }
    };
    res.on('finish', finish);
    res.on('close', finish);

    handle(req, res, record).catch(() => {
      // A failure while serving looks like a dropped connection to the client.
      res.destroy();
    });
  });

  server.keepAliveTimeout = 5_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (closing) socket.destroy();
  });

  async function handle(req: IncomingMessage, res: ServerResponse, record: RequestRecord): Promise<void> {
    const method = record.method;
    const attempt = (attempts.get(record.path) ?? 0) + 1;
    attempts.set(record.path, attempt);
    const fault = options.fault?.({ path: record.path, attempt, method });
    if (fault) record.fault = fault.kind;

    // Faults that stand in for something in front of the origin.
    if (fault?.kind === 'status') {
      const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8' };
      if (fault.retryAfter !== undefined) headers['Retry-After'] = fault.retryAfter;
      return sendText(res, method, fault.status, fault.body ?? `${fault.status} ${STATUS_CODES[fault.status] ?? 'Error'}\n`, headers);
    }
    if (fault?.kind === 'html') {
      return sendText(res, method, 200, CAPTIVE_PORTAL_HTML, { 'Content-Type': 'text/html; charset=utf-8' });
    }
    if (fault?.kind === 'redirect') {
      const status = fault.status ?? 302;
      return sendText(res, method, status, `Redirecting to ${fault.location}\n`, {
        'Content-Type': 'text/plain; charset=utf-8',
        Location: fault.location,
      });
    }
    if (fault?.kind === 'reset' && fault.afterBytes === undefined) {
      req.socket.resetAndDestroy();
      return;
    }
    if (fault?.kind === 'stall' && fault.afterBytes === undefined) {
      const alive = await pause(res, fault.ms);
      if (!alive) return;
    }

    if (method !== 'GET' && method !== 'HEAD') {
      return sendText(res, method, 405, 'Method Not Allowed\n', { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
    }
    if (options.requireToken !== undefined && header(req, 'authorization') !== `Bearer ${options.requireToken}`) {
      return sendText(res, method, 401, 'Unauthorized\n', {
        'WWW-Authenticate': 'Bearer realm="registry"',
        'Content-Type': 'text/plain; charset=utf-8',
      });
    }

    const target = await resolveTarget(root, record.path);
    if (!target) return sendText(res, method, 404, 'Not Found\n', { 'Content-Type': 'text/plain; charset=utf-8' });

    const { file, stats } = target;
    const etag = `"${stats.size.toString(16)}-${Math.floor(stats.mtimeMs).toString(16)}"`;
    const lastModified = stats.mtime.toUTCString();
    const headers: Record<string, string> = {
      'Content-Type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
    };
    if (useEtag) headers.ETag = etag;
    if (useLastModified) headers['Last-Modified'] = lastModified;
    if (useRanges) headers['Accept-Ranges'] = 'bytes';

    if (notModified(req, useEtag ? etag : undefined, useLastModified ? stats.mtime : undefined)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }

    let start = 0;
    let end = stats.size - 1;
    let status = 200;
    const rangeHeader = header(req, 'range');
    if (useRanges && rangeHeader !== undefined && ifRangeMatches(header(req, 'if-range'), useEtag ? etag : undefined, useLastModified ? lastModified : undefined)) {
      const r = parseRange(rangeHeader, stats.size);
      if (r.kind === 'unsatisfiable') {
        return sendText(res, method, 416, 'Range Not Satisfiable\n', {
          ...headers,
          'Content-Type': 'text/plain; charset=utf-8',
          'Content-Range': `bytes */${stats.size}`,
        });
      }
      if (r.kind === 'range') {
        ({ start, end } = r);
        status = 206;
        headers['Content-Range'] = `bytes ${start}-${end}/${stats.size}`;
      }
    }
    const length = end - start + 1;
    headers['Content-Length'] = String(length);

    if (method === 'HEAD' || length === 0) {
      if (fault?.kind === 'reset') {
        req.socket.resetAndDestroy();
        return;
      }
      res.writeHead(status, headers);
      res.end();
      return;
    }
    res.writeHead(status, headers);
    await sendBody(res, record, file, start, length, fault);
  }

  async function sendBody(res: ServerResponse, record: RequestRecord, file: string, start: number, length: number, fault: Fault | undefined): Promise<void> {
    let cutAt: number | undefined;
    if ((fault?.kind === 'reset' || fault?.kind === 'stall') && fault.afterBytes !== undefined) cutAt = clampCut(fault.afterBytes, length);
    if (fault?.kind === 'truncate') cutAt = clampCut(fault.afterBytes, length);
    const corruptAt = fault?.kind === 'corrupt' ? (fault.at === undefined ? Math.floor(length / 2) : Math.abs(Math.floor(fault.at)) % length) : undefined;

    const bps = options.bytesPerSecond;
    const startedAt = Date.now();
    let sent = 0;
    let cutDone = false;

    const write = async (buf: Buffer): Promise<boolean> => {
      // Throttle in small slices so the rate is smooth even for big chunks.
      const slice = bps !== undefined && bps > 0 ? Math.max(1, Math.floor(bps / 20)) : buf.length;
      for (let off = 0; off < buf.length; off += slice) {
        if (res.destroyed) return false;
        const part = buf.subarray(off, Math.min(buf.length, off + slice));
        const ok = res.write(part);
        sent += part.length;
        record.bytesSent = sent;
        if (!ok && !(await drained(res))) return false;
        if (bps !== undefined && bps > 0) {
          const due = startedAt + (sent / bps) * 1000 - Date.now();
          if (due > 0 && !(await pause(res, due))) return false;
        }
      }
      return true;
    };

    const stream = createReadStream(file, { start, end: start + length - 1, highWaterMark: 64 * 1024 });
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        let buf = chunk;
        if (corruptAt !== undefined && corruptAt >= sent && corruptAt < sent + buf.length) {
          buf = Buffer.from(buf);
          const i = corruptAt - sent;
          buf[i] = (buf[i] ?? 0) ^ 0xff;
        }
        if (cutAt !== undefined && !cutDone && sent + buf.length >= cutAt) {
          const head = cutAt - sent;
          if (!(await write(buf.subarray(0, head)))) return;
          cutDone = true;
          if (fault?.kind === 'truncate') {
            // Flush what was written, then FIN: the client sees a short body, not a reset.
            res.socket?.end();
            return;
          }
          if (fault?.kind === 'reset') {
            await flushed(res);
            res.socket?.resetAndDestroy();
            return;
          }
          if (fault?.kind === 'stall') {
            if (!(await pause(res, fault.ms))) return;
          }
          buf = buf.subarray(head);
        }
        if (!(await write(buf))) return;
      }
      res.end();
    } finally {
      stream.destroy();
    }
  }

  /** Wait `ms` (forever when undefined); false when the response died meanwhile. */
  function pause(res: ServerResponse, ms: number | undefined): Promise<boolean> {
    return new Promise((resolve) => {
      if (res.destroyed || abortAll.signal.aborted) return resolve(false);
      const timer = ms === undefined ? undefined : setTimeout(() => cleanup(true), ms);
      const onGone = (): void => cleanup(false);
      function cleanup(alive: boolean): void {
        if (timer) clearTimeout(timer);
        res.off('close', onGone);
        abortAll.signal.removeEventListener('abort', onGone);
        resolve(alive && !res.destroyed);
      }
      res.on('close', onGone);
      abortAll.signal.addEventListener('abort', onGone);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    count(pathPrefix?: string): number {
      if (pathPrefix === undefined) return requests.length;
      return requests.filter((r) => r.path.startsWith(pathPrefix)).length;
    },
    reset(): void {
      requests.length = 0;
      attempts.clear();
      epoch++;
    },
    settled(): Promise<void> {
      if (inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    close(): Promise<void> {
      closing = true;
      abortAll.abort();
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
      });
    },
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function clampCut(afterBytes: number, length: number): number {
  return Math.max(0, Math.min(Math.floor(afterBytes), length - 1));
}

function sendText(res: ServerResponse, method: string, status: number, body: string, headers: Record<string, string>): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, { ...headers, 'Content-Length': String(bytes.length) });
  res.end(method === 'HEAD' ? undefined : bytes);
}

function drained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    function done(ok: boolean): void {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    }
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

/** Resolves once everything written so far has left the socket's user-space buffer. */
function flushed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const socket = res.socket;
    if (!socket || socket.destroyed) return resolve();
    socket.write(Buffer.alloc(0), () => resolve());
  });
}

/**
 * Map a raw URL path to a regular file under root. Any `.`/`..` segment (plain or percent-encoded),
 * encoded separator, NUL, or symlink leading outside root gives undefined (a 404), as a careful
 * static host would.
 */
async function resolveTarget(root: string, rawPath: string): Promise<FileTarget | undefined> {
  const segments: string[] = [];
  for (const raw of rawPath.split('/')) {
    if (raw === '') continue;
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (seg === '.' || seg === '..' || /[/\\\0]/.test(seg)) return undefined;
    segments.push(seg);
  }
  if (segments.length === 0) return undefined;
  const candidate = join(root, ...segments);
  try {
    const real = await realpath(candidate);
    if (!real.startsWith(root + sep)) return undefined;
    const stats = await stat(real);
    if (!stats.isFile()) return undefined;
    return { file: real, stats };
  } catch {
    return undefined;
  }
}

/** RFC 9110 §13.1.2/§13.1.3: If-None-Match (weak comparison) wins over If-Modified-Since. */
function notModified(req: IncomingMessage, etag: string | undefined, mtime: Date | undefined): boolean {
  const inm = header(req, 'if-none-match');
  if (inm !== undefined) {
    if (etag === undefined) return false;
    if (inm.trim() === '*') return true;
    const opaque = (t: string): string => t.trim().replace(/^W\//, '');
    return inm.split(',').some((t) => opaque(t) === opaque(etag));
  }
  const ims = header(req, 'if-modified-since');
  if (ims !== undefined && mtime !== undefined) {
    const since = Date.parse(ims);
    if (Number.isNaN(since)) return false;
    return Math.floor(mtime.getTime() / 1000) * 1000 <= since;
  }
  return false;
}

/** RFC 9110 §13.1.5: strong comparison for entity tags; a date must equal Last-Modified exactly. */
function ifRangeMatches(ifRange: string | undefined, etag: string | undefined, lastModified: string | undefined): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.startsWith('W/')) return false;
  if (v.startsWith('"')) return etag !== undefined && v === etag;
  if (lastModified === undefined) return false;
  const a = Date.parse(v);
  return !Number.isNaN(a) && a === Date.parse(lastModified);
}

/** A single byte range (`N-M`, `N-`, `-N`); anything else is ignored (full 200), like most static hosts. */
function parseRange(value: string, size: number): RangeResult {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (!m) return { kind: 'none' };
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return { kind: 'none' };
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return { kind: 'none' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end };
}

/**
 * A seeded fault plan: about `rate` of requests get a transient fault (500, 503, 429 with
 * Retry-After: 0, reset mid-body, truncate, corrupt, short stall), at most `maxPerPath` (default 1)
 * per path. The decision is a pure function of (seed, path, attempt), so it does not depend on the
 * order in which concurrent requests arrive.
 */
export function randomFaults(options: { rate: number; seed: number; maxPerPath?: number; stallMs?: number }): NonNullable<ServerOptions['fault']> {
  const maxPerPath = options.maxPerPath ?? 1;
  const stallMs = options.stallMs ?? 50;
  const pick = (path: string, attempt: number): Fault | undefined => {
    const h = createHash('sha256').update(`${options.seed}\0${path}\0${attempt}`).digest();
    const roll = h.readUInt32BE(0) / 2 ** 32;
    if (roll >= options.rate) return undefined;
    const n = h.readUInt32BE(8);
    switch (h.readUInt32BE(4) % 7) {
      case 0:
        return { kind: 'status', status: 500 };
      case 1:
        return { kind: 'status', status: 503, retryAfter: '0' };
      case 2:
        return { kind: 'status', status: 429, retryAfter: '0' };
      case 3:
        return { kind: 'reset', afterBytes: n % 65_536 };
      case 4:
        return { kind: 'truncate', afterBytes: n % 65_536 };
      case 5:
        return { kind: 'corrupt', at: n };
      default:
        return { kind: 'stall', afterBytes: n % 65_536, ms: stallMs };
    }
  };
  return ({ path, attempt }) => {
    if (maxPerPath <= 0) return undefined;
    let earlier = 0;
    for (let a = 1; a < attempt && earlier < maxPerPath; a++) if (pick(path, a)) earlier++;
    return earlier < maxPerPath ? pick(path, attempt) : undefined;
  };
}
