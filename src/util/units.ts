/** Byte counts for people: printed (binary units, like `du -h`) and parsed from flags. */
import { ModelsError } from './errors.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
};

/**
 * A byte count as people write it: "1048576", "64KiB", "16MiB", "1M" (binary, like dd), "1.5GB"
 * (decimal SI). Case-insensitive; a space before the unit is allowed. E_USAGE on anything else.
 */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(String(text));
  const unit = match ? UNITS[(match[2] ?? '').toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new ModelsError('E_USAGE', `invalid size "${text}"`, { hint: 'write a byte count like 1048576, 64KiB, 16MiB, 1M or 1.5GB' });
  }
  const bytes = Math.round(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new ModelsError('E_USAGE', `size "${text}" is too large`, { hint: 'write a smaller size' });
  return bytes;
}
