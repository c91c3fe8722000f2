/**
 * What models.lock records for the kinds other than XPRIM: a flat `source:` map per entry (the pin),
 * checked here key by key, and the display fields (model, version, resolved) derived from it. The
 * content key stands in for an XPRIM manifest hash: it names the model's exact content (pin and
 * files) in the store's per-model records, and changes whenever a byte of the model would.
 */
import { sha256 } from '../util/hash.js';
import type { SourceKind } from './entry-source.js';

export type PinValue = string | number;
export type LockedPin = Record<string, PinValue>;

interface PinKey {
  type: 'string' | 'int' | 'sha256' | 'commit' | 'digest';
  required?: boolean;
  oneOf?: string[];
}

const PIN_KEYS: Record<Exclude<SourceKind, 'xprim'>, Record<string, PinKey>> = {
  url: {
    url: { type: 'string', required: true },
    sha256: { type: 'sha256', required: true },
    size: { type: 'int', required: true },
    file: { type: 'string' },
    extract: { type: 'string', oneOf: ['zip', 'tar', 'tar.gz'] },
    strip: { type: 'int' },
    etag: { type: 'string' },
    lastModified: { type: 'string' },
  },
  hf: {
    repo: { type: 'string', required: true },
    type: { type: 'string', required: true, oneOf: ['model', 'dataset', 'space'] },
    revision: { type: 'string', required: true },
    commit: { type: 'commit', required: true },
  },
  oci: {
    reference: { type: 'string', required: true },
    digest: { type: 'digest', required: true },
    layout: { type: 'string', oneOf: ['oras', 'modelpack', 'kitops', 'ollama'] },
    /** os/arch[/variant] of the index entry the digest was chosen as (absent: no index). */
    platform: { type: 'string' },
  },
};

export const PINNED_KINDS = Object.keys(PIN_KEYS) as Exclude<SourceKind, 'xprim'>[];

export function pinKeys(kind: Exclude<SourceKind, 'xprim'>): string[] {
  return Object.keys(PIN_KEYS[kind]);
}

/** What is wrong with one key of a pin, or undefined. */
export function checkPinValue(kind: Exclude<SourceKind, 'xprim'>, key: string, value: unknown): string | undefined {
  const rule = PIN_KEYS[kind][key];
  if (!rule) return `unknown key "${key}": expected ${pinKeys(kind).join(', ')}`;
  switch (rule.type) {
    case 'int':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? undefined : 'expected a non-negative integer';
    case 'sha256':
      return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value) ? undefined : 'expected 64 lowercase hex characters (a sha256)';
    case 'commit':
      return typeof value === 'string' && /^[0-9a-f]{40}$/.test(value) ? undefined : 'expected a 40-hex commit';
    case 'digest':
      return typeof value === 'string' && /^sha256:[0-9a-f]{64}$/.test(value) ? undefined : 'expected sha256:<64 hex>';
    default:
      if (typeof value !== 'string' || value === '') return 'expected a non-empty string';
      return rule.oneOf && !rule.oneOf.includes(value) ? `expected one of ${rule.oneOf.join(', ')}` : undefined;
  }
}

/** The required keys a pin lacks. */
export function missingPinKeys(kind: Exclude<SourceKind, 'xprim'>, pin: LockedPin): string[] {
  return Object.entries(PIN_KEYS[kind])
    .filter(([key, rule]) => rule.required && pin[key] === undefined)
    .map(([key]) => key);
}

/** model / version / resolved / registry, as messages and `models list` show them. */
export function describePin(kind: Exclude<SourceKind, 'xprim'>, pin: LockedPin): { model: string; version: string; resolved: string; registry: string } {
  const text = (key: string) => String(pin[key] ?? '');
  switch (kind) {
    case 'url':
      return { model: text('url'), version: 'url', resolved: `sha256:${text('sha256').slice(0, 12)}`, registry: new URL(text('url')).origin };
    case 'hf':
      return { model: `hf:${pin.type === 'model' ? '' : `${text('type')}s/`}${text('repo')}`, version: text('revision'), resolved: text('commit'), registry: 'huggingface' };
    default: {
      const reference = text('reference');
      return { model: `oci:${reference}`, version: reference.slice(reference.search(/[:@][^/]*$/) + 1), resolved: text('digest'), registry: reference.split('/')[0] ?? '' };
    }
  }
}

/** The content key of a pinned model: sha256 over its pin and its files, in a fixed order. */
export function contentKey(kind: SourceKind, pin: LockedPin, files: { path: string; size: number; sha256?: string }[]): string {
  const sorted = Object.fromEntries(Object.keys(pin).sort().map((k) => [k, pin[k]]));
  return sha256(JSON.stringify({ kind, pin: sorted, files: files.map((f) => [f.path, f.size, f.sha256 ?? null]) }));
}
