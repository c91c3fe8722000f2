/**
 * Which source an entry of models.yaml names (exactly one of `model`, `url`, `hf`, `oci`, `ollama`),
 * and the checks of its kind's keys that the schema cannot express. Network behaviour lives in
 * src/sources/; this file only reads models.yaml.
 */
import { posix } from 'node:path';
import { normalizeOciReference } from '../util/docker-names.js';
import { isLoopbackHost } from '../util/urls.js';
import { checkFolderPath } from '../util/paths.js';

export type SourceKind = 'xprim' | 'url' | 'hf' | 'oci';
export type ExtractFormat = 'zip' | 'tar' | 'tar.gz' | 'tgz' | 'auto';

export interface UrlSpec {
  kind: 'url';
  url: string;
  /** Pinned in models.yaml; else `models lock` downloads once and pins it (trust on first use). */
  sha256?: string;
  /** The installed file (no `extract`). */
  file: string;
  extract?: ExtractFormat;
  strip: number;
}

export interface HfSpec {
  kind: 'hf';
  /** `<org>/<repo>`, without the `datasets/` or `spaces/` prefix. */
  repo: string;
  repoType: 'model' | 'dataset' | 'space';
  revision: string;
  files: string[];
  exclude: string[];
}

export interface OciSpec {
  kind: 'oci';
  /** HOST/REPO:TAG or HOST/REPO@sha256:HEX, as written (`ollama:` expanded). */
  reference: string;
  /** The `ollama:` shorthand as written, for messages. */
  ollama?: string;
  files: string[];
  exclude: string[];
}

export type EntrySpec = UrlSpec | HfSpec | OciSpec;

export interface RawSourceKeys {
  model?: string;
  version?: string;
  registry?: string;
  url?: string;
  sha256?: string;
  file?: string;
  extract?: ExtractFormat;
  strip?: number;
  hf?: string;
  revision?: string;
  oci?: string;
  ollama?: string;
  files?: string[];
  exclude?: string[];
}

/** A problem with one key of the entry (`key` undefined: the entry itself). */
export interface KeyProblem {
  key?: keyof RawSourceKeys;
  message: string;
  hint?: string;
}

const KIND_KEYS = ['model', 'url', 'hf', 'oci', 'ollama'] as const;
const COMMON_KEYS: string[] = ['path', 'tags', 'when'];
const KEYS_OF: Record<(typeof KIND_KEYS)[number], (keyof RawSourceKeys)[]> = {
  model: ['model', 'version', 'registry'],
  url: ['url', 'sha256', 'file', 'extract', 'strip'],
  hf: ['hf', 'revision', 'files', 'exclude'],
  oci: ['oci', 'files', 'exclude'],
  ollama: ['ollama'],
};

export type ReadSource = { kind: 'xprim' } | { kind: Exclude<SourceKind, 'xprim'>; spec: EntrySpec; model: string; version: string };

/** Which kind the entry is, and its spec; problems name the key they are about. */
export function readSource(raw: RawSourceKeys): ReadSource | KeyProblem {
  const present = KIND_KEYS.filter((k) => raw[k] !== undefined);
  if (present.length === 0) {
    if (raw.version !== undefined || raw.registry !== undefined) return { message: 'missing required key "model"' };
    return { message: 'no source: expected one of model (with version), url, hf, oci or ollama', hint: 'e.g. `url: https://example.com/model.onnx` or `model: silero/vad` with `version: latest`' };
  }
  if (present.length > 1) {
    return { key: present[1], message: `"${present[0]}" and "${present[1]}" name two sources: an entry has exactly one`, hint: 'split it into two entries' };
  }
  const kind = present[0] as (typeof KIND_KEYS)[number];
  const foreign = (Object.keys(raw) as (keyof RawSourceKeys)[]).find((k) => raw[k] !== undefined && !COMMON_KEYS.includes(k) && !KEYS_OF[kind].includes(k));
  if (foreign) return { key: foreign, message: `"${foreign}" does not apply to a ${kind}: entry`, hint: `keys of a ${kind}: entry: ${KEYS_OF[kind].join(', ')}, path, tags, when` };
  switch (kind) {
    case 'model':
      return raw.version === undefined ? { message: 'missing required key "version"' } : { kind: 'xprim' };
    case 'url':
      return readUrl(raw);
    case 'hf':
      return readHf(raw);
    default:
      return readOci(raw, kind);
  }
}

function readUrl(raw: RawSourceKeys): ReadSource | KeyProblem {
  const text = (raw.url as string).trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { key: 'url', message: `url ${JSON.stringify(raw.url)}: not a valid URL`, hint: 'expected https://host/path/file' };
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    return { key: 'url', message: `url ${JSON.stringify(raw.url)}: expected https:// (plain http only to 127.0.0.1, ::1 or localhost)`, hint: 'use the https:// address of the file' };
  }
  if (url.username !== '' || url.password !== '') return { key: 'url', message: `url ${JSON.stringify(raw.url)}: must not contain credentials`, hint: 'credentials in models.yaml end up in version control; use a URL that needs none' };
  if (url.hash !== '') return { key: 'url', message: `url ${JSON.stringify(raw.url)}: expected no #fragment` };
  if (raw.strip !== undefined && raw.extract === undefined) return { key: 'strip', message: '"strip" needs "extract"', hint: 'add extract: auto (or zip, tar, tar.gz)' };
  if (raw.file !== undefined && raw.extract !== undefined) return { key: 'file', message: '"file" and "extract" exclude each other: an archive installs the files it holds', hint: 'drop file:, or drop extract: to install the archive itself' };
  const file = raw.file ?? lastSegment(url);
  const normalised = posix.normalize(file.replace(/\\/g, '/'));
  const problem = file === '' ? 'the URL has no file name' : posix.isAbsolute(normalised) || normalised.startsWith('..') ? 'must stay inside the model folder' : checkFolderPath(normalised);
  if (problem) return { key: raw.file !== undefined ? 'file' : 'url', message: `file ${JSON.stringify(file)}: ${problem}`, hint: 'name the installed file with file: NAME' };
  const spec: UrlSpec = { kind: 'url', url: url.href, file: normalised, strip: raw.strip ?? 0, ...(raw.sha256 ? { sha256: raw.sha256 } : {}), ...(raw.extract ? { extract: raw.extract } : {}) };
  return { kind: 'url', spec, model: url.href, version: raw.sha256 ?? '' };
}

function lastSegment(url: URL): string {
  const segment = url.pathname.split('/').pop() ?? '';
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

const HF_REPO = /^(?:(datasets|spaces|models)\/)?([A-Za-z0-9][\w.-]*\/[\w.-]+)$/;

function readHf(raw: RawSourceKeys): ReadSource | KeyProblem {
  const match = HF_REPO.exec((raw.hf as string).trim());
  if (!match || match[2]?.includes('..')) {
    return { key: 'hf', message: `hf ${JSON.stringify(raw.hf)}: expected <org>/<repo> or datasets/<org>/<repo>`, hint: 'e.g. hf: openai/whisper-tiny' };
  }
  const repoType = match[1] === 'datasets' ? 'dataset' : match[1] === 'spaces' ? 'space' : 'model';
  const spec: HfSpec = { kind: 'hf', repo: match[2] as string, repoType, revision: raw.revision ?? 'main', files: raw.files ?? [], exclude: raw.exclude ?? [] };
  return { kind: 'hf', spec, model: `hf:${match[1] && match[1] !== 'models' ? `${match[1]}/` : ''}${spec.repo}`, version: spec.revision };
}

function readOci(raw: RawSourceKeys, kind: 'oci' | 'ollama'): ReadSource | KeyProblem {
  let reference = (kind === 'oci' ? raw.oci : raw.ollama) as string;
  if (kind === 'ollama') {
    const [name, tag] = reference.split(':');
    if (!name || !/^[\w.-]+(\/[\w.-]+)?$/.test(name) || (tag !== undefined && !/^[\w][\w.-]{0,127}$/.test(tag))) {
      return { key: 'ollama', message: `ollama ${JSON.stringify(raw.ollama)}: expected NAME[:TAG] (e.g. llama3.2:1b)` };
    }
    reference = `registry.ollama.ai/${name.includes('/') ? name : `library/${name}`}:${tag ?? 'latest'}`;
  } else {
    // `alpine`, `acme/tiny:v1`, `docker.io/x`: the Docker Hub reference `docker pull` would make of it.
    const match = /^([a-z0-9.-]+(?::\d+)?\/[a-z0-9._/-]+?)(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})?$/.exec(normalizeOciReference(reference));
    if (!match) return { key: 'oci', message: `oci ${JSON.stringify(raw.oci)}: expected HOST/REPO:TAG or HOST/REPO@sha256:<64 hex>`, hint: 'e.g. oci: ghcr.io/acme/tiny-model:v1' };
    // No tag means :latest, as docker pull and oras pull take it.
    reference = `${match[1] as string}${match[2] ?? ':latest'}`;
  }
  const spec: OciSpec = { kind: 'oci', reference: reference.trim(), files: raw.files ?? [], exclude: raw.exclude ?? [], ...(kind === 'ollama' ? { ollama: raw.ollama as string } : {}) };
  const at = spec.reference.lastIndexOf('@');
  const colon = spec.reference.lastIndexOf(':');
  const version = at > 0 ? spec.reference.slice(at + 1) : colon > spec.reference.lastIndexOf('/') ? spec.reference.slice(colon + 1) : 'latest';
  return { kind: 'oci', spec, model: kind === 'ollama' ? `ollama:${raw.ollama as string}` : `oci:${spec.reference}`, version };
}
