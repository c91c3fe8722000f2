/** Writing received parts (views into socket buffers) at a file position without copying them. */
import type { FileHandle } from 'node:fs/promises';

/** Bytes [from, to) of a list of parts, as views into them (no copy). */
export function sliceParts(parts: Uint8Array[], from: number, to: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const part of parts) {
    const partEnd = at + part.byteLength;
    if (partEnd > from && at < to) out.push(part.subarray(Math.max(0, from - at), Math.min(part.byteLength, to - at)));
    at = partEnd;
    if (at >= to) break;
  }
  return out;
}

/** writev until every byte is written (a short write continues where it stopped). */
export async function writeAllAt(handle: FileHandle, parts: Uint8Array[], position: number): Promise<void> {
  let left = parts;
  let at = position;
  while (left.length > 0) {
    const total = left.reduce((n, p) => n + p.byteLength, 0);
    const { bytesWritten } = await handle.writev(left, at);
    if (bytesWritten >= total) return;
    left = sliceParts(left, bytesWritten, total);
    at += bytesWritten;
  }
}
