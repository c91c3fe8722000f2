/**
 * A front for the real registry that redirects blob downloads to a second origin, as registries
 * backed by S3, GCS or a CDN do (GHCR, ECR, Docker Hub answer `GET /v2/<name>/blobs/<digest>` with a
 * 307 to a pre-signed URL). distribution's filesystem driver cannot redirect, so this proxy does:
 * every request goes through to the registry unchanged (Host kept, so upload Locations point here),
 * except a blob GET/HEAD the registry would answer 200 (same credentials): that one gets a 307 to the
 * blob host, a test/support/registry-server.ts serving the registry's storage folder, whose request
 * log shows whether any credential followed the redirect.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { OciRegistry } from './oci-registry.js';
import { type RegistryServer, type ServerOptions, startRegistryServer } from './registry-server.js';

export interface BlobRedirectFront {
  /** http://127.0.0.1:PORT: use it as the registry. */
  url: string;
  host: string;
  /** The second origin the blobs are redirected to. */
  blobHost: RegistryServer;
  /** Blob requests that were redirected. */
  redirected: string[];
  close(): Promise<void>;
}

const BLOB = /^\/v2\/(.+)\/blobs\/sha256:([0-9a-f]{64})$/;

export async function startBlobRedirect(registry: OciRegistry, options: { status?: 302 | 307; blobHost?: Omit<ServerOptions, 'root'> } = {}): Promise<BlobRedirectFront> {
  const blobHost = await startRegistryServer({ ...options.blobHost, root: registry.storage });
  const target = new URL(registry.url);
  const redirected: string[] = [];
  const sockets = new Set<Socket>();

  const forward = (req: IncomingMessage, method: string, onResponse: (res: IncomingMessage) => void): void => {
    const out = httpRequest({ host: target.hostname, port: target.port, method, path: req.url, headers: req.headers }, onResponse);
    out.on('error', () => req.socket.destroy());
    if (method === req.method) req.pipe(out);
    else out.end();
  };
  const relay = (res: ServerResponse) => (up: IncomingMessage): void => {
    res.writeHead(up.statusCode ?? 502, up.headers);
    up.pipe(res);
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const blob = BLOB.exec(path);
    if (!blob || (req.method !== 'GET' && req.method !== 'HEAD')) return forward(req, req.method ?? 'GET', relay(res));
    // Ask the registry first, with the caller's credentials: only an authorised, existing blob redirects.
    forward(req, 'HEAD', (check) => {
      check.resume();
      if (check.statusCode !== 200) return forward(req, req.method ?? 'GET', relay(res));
      const hex = blob[2] ?? '';
      redirected.push(path);
      res.writeHead(options.status ?? 307, { Location: `${blobHost.url}/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`, 'Content-Length': '0' });
      res.end();
    });
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
    blobHost,
    redirected,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await blobHost.close();
    },
  };
}
