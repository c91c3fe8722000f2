/**
 * A minimal, deterministic ustar writer for test fixtures (OCI tar layers): regular files and
 * folders, mtime 0, uid/gid 0, names split into prefix/name for paths up to 255 bytes. Hostile
 * entries (`..`, absolute paths, symlinks) can be written on purpose through `type` and `linkname`.
 */
import { gzipSync } from 'node:zlib';

export interface TarEntry {
  /** The name exactly as stored (not normalised: fixtures may be hostile). */
  name: string;
  content?: Buffer | string;
  /** '0' file (default), '5' folder, '2' symlink, '1' hard link. */
  type?: '0' | '1' | '2' | '5';
  linkname?: string;
  mode?: number;
}

export function tar(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = typeof e.content === 'string' ? Buffer.from(e.content) : (e.content ?? Buffer.alloc(0));
    const type = e.type ?? '0';
    blocks.push(header(e.name, type === '0' ? body.length : 0, type, e.linkname ?? '', e.mode ?? (type === '5' ? 0o755 : 0o644)));
    if (type === '0' && body.length > 0) {
      blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024)); // two zero blocks end the archive
  return Buffer.concat(blocks);
}

/** gzip with a zeroed header mtime, so the same entries give the same digest. */
export const tarGz = (entries: TarEntry[]): Buffer => gzipSync(tar(entries));

function header(fullName: string, size: number, type: string, linkname: string, mode: number): Buffer {
  const h = Buffer.alloc(512);
  let name = fullName;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', name.length - 1);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100 || Buffer.byteLength(name.slice(0, cut)) > 155) {
      throw new Error(`tar name too long: ${fullName}`);
    }
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
  }
  h.write(name, 0, 100);
  h.write(octal(mode, 7), 100);
  h.write(octal(0, 7), 108);
  h.write(octal(0, 7), 116);
  h.write(octal(size, 11), 124);
  h.write(octal(0, 11), 136);
  h.fill(' ', 148, 156); // checksum is computed with its own field as spaces
  h.write(type, 156);
  h.write(linkname, 157, 100);
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.write(prefix, 345, 155);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

const octal = (n: number, width: number): string => `${n.toString(8).padStart(width, '0')}\0`;
