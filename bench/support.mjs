/** What several benchmark scripts need: a file of random bytes written in 16 MiB pieces, a free port. */
import { randomFillSync } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';

const PIECE = 16 * 1024 * 1024;

export async function writeRandomFile(path, size) {
  await mkdir(dirname(path), { recursive: true });
  const handle = await open(path, 'w');
  try {
    const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(size, PIECE)));
    for (let done = 0; done < size; ) {
      const n = Math.min(buffer.length, size - done);
      randomFillSync(buffer, 0, n);
      await handle.write(buffer, 0, n, done);
      done += n;
    }
  } finally {
    await handle.close();
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
