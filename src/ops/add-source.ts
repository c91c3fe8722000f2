/**
 * What `models add SOURCE` writes: the models.yaml entry a source argument stands for, and the
 * name it gets unless --name says otherwise, as `cargo add` and `npm install` derive them.
 */
import { formatFromName } from '../archive/format.js';
import { ModelsError } from '../util/errors.js';
import { NAME_PATTERN } from '../project/config.js';

export interface AddRequest {
  source: string;
  name?: string | undefined;
  files?: string[] | undefined;
  /** hf: the branch, tag or commit (the same as hf:ORG/REPO@REVISION). */
  revision?: string | undefined;
  path?: string | undefined;
  registry?: string | undefined;
  /** For an archive URL: install the archive file itself rather than what it holds. */
  noExtract?: boolean | undefined;
}

export interface EntryToAdd {
  name: string;
  entry: Record<string, unknown>;
}

const USAGE_HINT = 'expected https://…/file, hf:ORG/REPO[@REVISION], oci:HOST/REPO:TAG, ollama:NAME:TAG or GROUP/MODEL[@VERSION]';

export function entryFor(request: AddRequest): EntryToAdd {
  const { source } = request;
  let derived: EntryToAdd;
  if (/^https?:\/\//i.test(source)) derived = urlEntry(source, request.noExtract);
  else if (source.startsWith('hf:')) derived = hfEntry(source.slice(3));
  else if (source.startsWith('oci:')) derived = { name: lastPart(source.slice(4).replace(/[@:][^/]*$/, '')), entry: { oci: source.slice(4) } };
  else if (source.startsWith('ollama:')) derived = { name: source.slice(7).replace(/:.*$/, '').replace(/^.*\//, ''), entry: { ollama: source.slice(7) } };
  else if (/^[^/\s@:]+\/[^/\s@:]+(@\S+)?$/.test(source)) {
    const [model, version] = source.split('@') as [string, string | undefined];
    derived = { name: lastPart(model), entry: { model, version: version ?? 'latest', ...(request.registry ? { registry: request.registry } : {}) } };
  } else {
    throw new ModelsError('E_USAGE', `models add ${JSON.stringify(source)}: not a source`, { hint: USAGE_HINT });
  }
  if (request.files?.length) {
    if (!('hf' in derived.entry || 'oci' in derived.entry)) throw new ModelsError('E_USAGE', '--files applies to hf: and oci: sources only');
    derived.entry.files = request.files;
  }
  if (request.revision) {
    if (!('hf' in derived.entry)) throw new ModelsError('E_USAGE', '--revision applies to hf: sources only', { hint: 'an oci: source takes its tag or digest in the reference' });
    derived.entry.revision = request.revision;
  }
  if (request.path) derived.entry.path = request.path;
  const name = request.name ?? toName(derived.name);
  if (!NAME_PATTERN.test(name)) {
    throw new ModelsError('E_USAGE', `--name ${JSON.stringify(name)}: expected lowercase letters, digits, ".", "_" or "-", starting with a letter or digit, at most 64 characters`);
  }
  return { name, entry: derived.entry };
}

function urlEntry(url: string, noExtract: boolean | undefined): EntryToAdd {
  let file: string;
  try {
    file = decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
  } catch {
    throw new ModelsError('E_USAGE', `models add ${url}: not a valid URL`, { hint: USAGE_HINT });
  }
  const archive = formatFromName(file) !== undefined && !noExtract;
  // A model name from the file: "vosk-model-small-en-us-0.15.zip" → "vosk-model-small-en-us-0.15".
  const stem = formatFromName(file) !== undefined ? file.replace(/\.(tar\.gz|tgz|tar|zip)$/i, '') : file.replace(/\.[A-Za-z0-9]{1,8}$/, '');
  return { name: stem || 'model', entry: { url, ...(archive ? { extract: 'auto' } : {}) } };
}

function hfEntry(spec: string): EntryToAdd {
  const [repo, revision] = spec.split('@') as [string, string | undefined];
  return { name: lastPart(repo), entry: { hf: repo, ...(revision ? { revision } : {}) } };
}

function lastPart(path: string): string {
  return path.split('/').filter(Boolean).pop() ?? path;
}

/** The nearest valid model name: lowercase, other characters as "-", at most 64. */
export function toName(raw: string): string {
  const name = raw
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 64)
    .replace(/[-.]+$/, '');
  return name || 'model';
}
