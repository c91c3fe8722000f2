/**
 * A static file server that talks like `python3 -m http.server`: HTTP/1.0, Content-Length, no
 * keep-alive (the connection is closed after every response), no Range. Plain node:net, so that the
 * framing is exactly what such servers send.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { type Socket, createServer } from 'node:net';
import { join, normalize } from 'node:path';

export interface Http10Server {
  url: string;
  /** Request paths, in arrival order. */
  paths: string[];
  close(): Promise<void>;
}

export async function startHttp10Server(root: string): Promise<Http10Server> {
  const paths: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', function onData(data: Buffer) {
      head += data.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      const path = decodeURIComponent((head.split(' ')[1] ?? '/').split('?')[0] ?? '/');
      paths.push(path);
      void respond(socket, join(root, normalize(path)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    paths,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function respond(socket: Socket, file: string): Promise<void> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) {
    socket.end('HTTP/1.0 404 File not found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  socket.write(`HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6\r\nContent-Type: application/octet-stream\r\nContent-Length: ${info.size}\r\nLast-Modified: ${info.mtime.toUTCString()}\r\nConnection: close\r\n\r\n`);
  createReadStream(file).pipe(socket);
}
