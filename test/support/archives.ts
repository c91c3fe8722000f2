/**
 * Archives built in the tests. Ordinary ones with the real writers (yazl for zip, node-tar for tar),
 * hostile ones by hand: a ustar header writer, a byte patch for zip names yazl refuses to write, and
 * streamed zero-filled bombs whose compressed data is built once and repeated.
 */
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { constants, crc32, deflateRawSync, gzipSync } from 'node:zlib';
import yazl from 'yazl';

export interface ZipItem {
  name: string;
  data?: Buffer;
  dir?: boolean;
  /** Unix mode including the file type bits, e.g. 0o100755 or 0o120777 for a symlink. */
  mode?: number;
  compress?: boolean;
}

/** A zip written by yazl. */
export async function zipBuffer(items: ZipItem[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const item of items) {
    const options = { mtime: new Date(0), ...(item.mode !== undefined ? { mode: item.mode } : {}) };
    if (item.dir) zip.addEmptyDirectory(item.name, options);
    else zip.addBuffer(item.data ?? Buffer.alloc(0), item.name, { ...options, compress: item.compress ?? true });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Replace every occurrence of a name (same byte length) in both zip headers: for names yazl refuses. */
export function patchBytes(buffer: Buffer, from: string, to: string): Buffer {
  const a = Buffer.from(from, 'utf8');
  const b = Buffer.from(to, 'utf8');
  if (a.length !== b.length) throw new Error('patchBytes: lengths differ');
  let at = buffer.indexOf(a);
  if (at < 0) throw new Error(`patchBytes: ${from} not found`);
  for (; at >= 0; at = buffer.indexOf(a, at + 1)) b.copy(buffer, at);
  return buffer;
}

export interface TarItem {
  name: string;
  /** ustar type flag: '0' file, '5' dir, '1' hard link, '2' symlink, '3' char, '4' block, '6' FIFO, 'x' pax… */
  type?: string;
  data?: Buffer;
  mode?: number;
  linkname?: string;
  /** Size written in the header, when it should lie. */
  size?: number;
  /** Write a wrong header checksum. */
  badChecksum?: boolean;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** One 512-byte ustar header. */
export function tarHeader(item: TarItem): Buffer {
  const h = Buffer.alloc(512);
  h.write(item.name, 0, 100, 'utf8');
  h.write(octal(item.mode ?? 0o644, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(item.size ?? item.data?.length ?? 0, 12), 124, 'latin1');
  h.write(octal(0, 12), 136, 'latin1');
  h.write(item.type ?? '0', 156, 'latin1');
  h.write(item.linkname ?? '', 157, 100, 'utf8');
  h.write('ustar\u000000', 257, 'latin1');
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(octal(item.badChecksum ? sum + 1 : sum, 7) + ' ', 148, 'latin1');
  return h;
}

function pad(data: Buffer): Buffer {
  const rest = data.length % 512;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(512 - rest)]);
}

/** A pax extended header record set, e.g. { path: 'long/name' }. */
export function paxData(fields: Record<string, string>): Buffer {
  let out = '';
  for (const [key, value] of Object.entries(fields)) {
    const body = ` ${key}=${value}\n`;
    const bytes = Buffer.byteLength(body);
    let length = bytes + 1;
    while (String(length).length + bytes !== length) length = String(length).length + bytes;
    out += `${length}${body}`;
  }
  return Buffer.from(out, 'utf8');
}

/** A tar written header by header, with the two end blocks. */
export function tarBuffer(items: TarItem[], { end = true } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const item of items) {
    parts.push(tarHeader(item));
    if (item.data) parts.push(pad(item.data));
  }
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const MIB = 1024 * 1024;
const ZEROS = Buffer.alloc(MIB);

/**
 * A one-entry zip holding `actualMiB` MiB of zeros deflated (about 1 KiB per MiB), whose headers
 * declare `declaredBytes`. The deflate stream is one sync-flushed segment repeated, then an empty
 * final block: valid deflate, built in milliseconds. `crc` computes the true CRC-32 (slower).
 */
export async function zeroZipBomb(path: string, actualMiB: number, declaredBytes: number, { crc = false } = {}): Promise<void> {
  const segment = deflateRawSync(ZEROS, { finishFlush: constants.Z_SYNC_FLUSH });
  const final = Buffer.from([0x03, 0x00]);
  const compressed = segment.length * actualMiB + final.length;
  let checksum = 0;
  if (crc) for (let i = 0; i < actualMiB; i++) checksum = crc32(ZEROS, checksum);
  const name = Buffer.from('zeros.bin');
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8); // deflate
  local.writeUInt32LE(checksum, 14);
  local.writeUInt32LE(compressed, 18);
  local.writeUInt32LE(declaredBytes, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE((3 << 8) | 20, 4); // made on Unix
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(checksum, 16);
  central.writeUInt32LE(compressed, 20);
  central.writeUInt32LE(declaredBytes, 24);
  central.writeUInt16LE(name.length, 28);
  central.writeUInt32LE((0o100644 << 16) >>> 0, 38);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + name.length, 12);
  end.writeUInt32LE(local.length + name.length + compressed, 16);
  await writeParts(path, [local, name], segment, actualMiB, [final, central, name, end]);
}

/** A tar.gz of one entry of `actualMiB` MiB of zeros, as concatenated gzip members; the header may declare more. */
export async function zeroTarGzBomb(path: string, actualMiB: number, declaredBytes = actualMiB * MIB): Promise<void> {
  const member = gzipSync(ZEROS);
  const head = gzipSync(tarHeader({ name: 'zeros.bin', size: declaredBytes }));
  await writeParts(path, [head], member, actualMiB, [gzipSync(Buffer.alloc(1024))]);
}

async function writeParts(path: string, before: Buffer[], repeated: Buffer, times: number, after: Buffer[]): Promise<void> {
  const out = createWriteStream(path);
  for (const part of before) out.write(part);
  for (let i = 0; i < times; i++) if (!out.write(repeated)) await once(out, 'drain');
  for (const part of after) out.write(part);
  out.end();
  await once(out, 'finish');
}

export async function writeArchive(path: string, data: Buffer): Promise<string> {
  await writeFile(path, data);
  return path;
}
