/**
 * A logging front for the real registry: every request goes through unchanged (Host kept, so upload
 * Locations point back here) and is recorded with its method, path, query and Authorization, so a
 * test can say "zero requests", "never asked the tag" or "no credential reached this origin".
 */
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface LoggedRequest {
  method: string;
  path: string;
  query: string;
  authorization?: string;
  status: number;
}

export interface RequestLogFront {
  url: string;
  host: string;
  requests: LoggedRequest[];
  close(): Promise<void>;
}

export async function startRequestLog(targetUrl: string): Promise<RequestLogFront> {
  const target = new URL(targetUrl);
  const requests: LoggedRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const [path = '/', query = ''] = (req.url ?? '/').split('?');
    const record: LoggedRequest = { method: req.method ?? 'GET', path, query, status: 0, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) };
    const out = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      record.status = up.statusCode ?? 0;
      requests.push(record);
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on('error', () => req.socket.destroy());
    req.pipe(out);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
