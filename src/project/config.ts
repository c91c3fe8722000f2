/**
 * models.yaml (version 1): parse with `yaml` keeping node ranges, validate with ajv against the
 * shipped schema, then the semantic checks a schema cannot express. Every problem becomes one
 * E_CONFIG error whose message starts with `<file>:<line>:<col>: ` and says what was expected.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { ErrorObject } from 'ajv';
import validateModelsSchema from '../generated/models-schema-validator.js';
import { type Document, LineCounter, parseDocument, isScalar } from 'yaml';
import { ModelsError } from '../util/errors.js';
import { type Problem, Reporter, keyOffset, locate, schemaProblem, valueOffset } from './config-problems.js';
import { checkInstallPath, checkRegistry, checkRoot, reservedSegment, stripTrailingSlash } from './config-values.js';
import { type EntrySpec, type RawSourceKeys, type SourceKind, readSource } from './entry-source.js';

export type { EntrySpec, HfSpec, OciSpec, SourceKind, UrlSpec, ExtractFormat } from './entry-source.js';

export { NAME_PATTERN, suggest } from './config-problems.js';
export { resolveRegistry, reservedSegment } from './config-values.js';
export { matchesPlatform, parsePlatform } from './platform.js';

// Precompiled from the schema at build time (scripts/build-validator.mjs): no ajv compile per run.
const validateSchema = validateModelsSchema as ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

export interface WhenClause {
  os?: string[];
  arch?: string[];
}

export interface ModelEntry {
  /** Local name, ^[a-z0-9][a-z0-9._-]{0,63}$. */
  name: string;
  /** Where the files come from: an XPRIM registry (`model:`), or `url:`, `hf:`, `oci:`/`ollama:`. */
  kind: SourceKind;
  /** xprim: "<group>/<model>" as written. Other kinds: what to call it in messages (the URL, hf:org/repo, oci:ref). */
  model: string;
  /** xprim: the version or alias. hf: the revision; oci: the tag or digest; url: the pinned sha256, if any. */
  version: string;
  /** xprim: the effective registry as written (trailing "/" removed): machine-independent, recorded in the lock. Else "". */
  registry: string;
  /** xprim: the same, resolved: an http(s) URL or an absolute file:// URL, without trailing slash. Else "". */
  registryUrl: string;
  /** The kind's own keys, for every kind but xprim. */
  source?: EntrySpec;
  /** Install path relative to root, posix-normalised. */
  path: string;
  tags: string[];
  when?: WhenClause;
  /** 1-based line of the entry's key in models.yaml. */
  line: number;
}

export interface ProjectConfig {
  file: string;
  dir: string;
  mirrors: string[];
  root: string;
  models: ModelEntry[];
}

// --- parse ---------------------------------------------------------------------------------------

interface RawEntry extends RawSourceKeys {
  path?: string;
  tags?: string[];
  when?: WhenClause;
}

interface RawConfig {
  version: 1;
  registry?: string;
  mirrors?: string[];
  root?: string;
  models: Record<string, RawEntry>;
}

/** One parse: the document (for locating problems), its lines, and the problems found so far. */
interface ParseContext {
  doc: Document;
  lineCounter: LineCounter;
  reporter: Reporter;
  raw: RawConfig;
  dir: string;
  problems: Problem[];
}

export function parseConfig(text: string, file: string): ProjectConfig {
  const lineCounter = new LineCounter();
  const reporter = new Reporter(file, lineCounter);
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const raw = validatedData(doc, text, reporter);
  const absFile = resolve(file);
  const ctx: ParseContext = { doc, lineCounter, reporter, raw, dir: dirname(absFile), problems: [] };
  const mirrors = (raw.mirrors ?? []).map((m, i) => registryAt(ctx, m, ['mirrors', String(i)]));
  const root = readRoot(ctx);
  const models = readEntries(ctx);
  reporter.throwFirst(ctx.problems);
  return { file: absFile, dir: ctx.dir, mirrors, root, models };
}

/** YAML syntax, then the schema: the data as the schema promises it, or the first problem thrown. */
function validatedData(doc: Document, text: string, reporter: Reporter): RawConfig {
  const syntax = doc.errors[0];
  if (syntax) {
    const offset = syntax.pos[0];
    let message = syntax.message.split('\n')[0] ?? 'invalid YAML';
    if (syntax.code === 'DUPLICATE_KEY') {
      const key = /^[^:\n]*/.exec(text.slice(offset))?.[0]?.trim() ?? '';
      message = `duplicate key ${JSON.stringify(key.replace(/^["']|["']$/g, ''))}`;
    } else {
      message = `invalid YAML: ${message}`;
    }
    throw reporter.error({ offset, message, hint: 'fix the YAML syntax in models.yaml' });
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    throw reporter.error({ offset: 0, message: 'models.yaml is empty: expected a mapping with "version: 1" and "models:"', hint: 'create one: see README' });
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // An alias with no anchor, or an alias bomb: the yaml library throws plain errors for these.
    throw reporter.error({ offset: 0, message: `invalid YAML: ${(error as Error).message.split('\n')[0]}`, hint: 'fix the YAML syntax in models.yaml' });
  }
  if (!validateSchema(data)) {
    reporter.throwFirst((validateSchema.errors ?? []).map((error) => schemaProblem(doc, text, error)).filter((p): p is Problem => p !== undefined));
  }
  return data as RawConfig;
}

function registryAt(ctx: ParseContext, value: string, segments: string[]): string {
  const result = checkRegistry(value, ctx.dir);
  if ('url' in result) return result.url;
  ctx.problems.push({ offset: valueOffset(locate(ctx.doc, segments)), message: result.problem, hint: result.hint });
  return '';
}

function readRoot(ctx: ParseContext): string {
  const value = ctx.raw.root;
  if (value === undefined) return resolve(ctx.dir, 'models');
  const offset = valueOffset(locate(ctx.doc, ['root']));
  const problem = (message: string, hint?: string) => ctx.problems.push({ offset, message: `root ${JSON.stringify(value)}: ${message}`, ...(hint ? { hint } : {}) });
  if (/^[a-zA-Z][a-zA-Z0-9+.-]+:\/\//.test(value)) problem('expected a folder path, not a URL');
  else if (value === '~' || value.startsWith('~/')) problem('"~" is not expanded', 'use a path relative to models.yaml, or an absolute path');
  // eslint-disable-next-line no-control-regex
  else if (/[\u0000-\u001f\u007f]/.test(value)) problem('contains a control character');
  else {
    const checked = checkRoot(value, ctx.dir);
    if ('root' in checked) return checked.root;
    ctx.problems.push({ offset, message: checked.problem, hint: checked.hint });
  }
  return resolve(ctx.dir, 'models');
}

function readEntries(ctx: ParseContext): ModelEntry[] {
  const models: ModelEntry[] = [];
  const claimed: ClaimedPath[] = [];
  const topRegistryUrl = ctx.raw.registry !== undefined ? registryAt(ctx, ctx.raw.registry, ['registry']) : undefined;
  for (const [name, raw] of Object.entries(ctx.raw.models)) {
    const entry = readEntry(ctx, name, raw, topRegistryUrl, claimed);
    if (entry) models.push(entry);
  }
  return models;
}

interface ClaimedPath {
  path: string;
  folded: string;
  name: string;
  line: number;
}

function readEntry(ctx: ParseContext, name: string, raw: RawEntry, topRegistryUrl: string | undefined, claimed: ClaimedPath[]): ModelEntry | undefined {
  const entryKey = locate(ctx.doc, ['models', name]);
  const line = ctx.lineCounter.linePos(keyOffset(entryKey)).line;
  const source = readEntrySource(ctx, name, raw, topRegistryUrl);
  const path = readInstallPath(ctx, name, raw, claimed, line);
  if (!source || path === undefined) return undefined;
  const entry: ModelEntry = { name, ...source, path, tags: raw.tags ?? [], line };
  if (raw.when !== undefined) {
    const when: WhenClause = {};
    if (raw.when.os !== undefined) when.os = raw.when.os;
    if (raw.when.arch !== undefined) when.arch = raw.when.arch;
    entry.when = when;
  }
  return entry;
}

type EntrySourceFields = Pick<ModelEntry, 'kind' | 'model' | 'version' | 'registry' | 'registryUrl' | 'source'>;

function readEntrySource(ctx: ParseContext, name: string, raw: RawEntry, topRegistryUrl: string | undefined): EntrySourceFields | undefined {
  const read = readSource(raw);
  if ('message' in read) {
    const at = read.key ? valueOffset(locate(ctx.doc, ['models', name, read.key])) : keyOffset(locate(ctx.doc, ['models', name]));
    ctx.problems.push({ offset: at, message: `models.${name}: ${read.message}`, ...(read.hint ? { hint: read.hint } : {}) });
    return undefined;
  }
  if (read.kind !== 'xprim') return { kind: read.kind, model: read.model, version: read.version, registry: '', registryUrl: '', source: read.spec };
  if (raw.registry !== undefined) {
    return { kind: 'xprim', model: raw.model as string, version: raw.version as string, registry: stripTrailingSlash(raw.registry.trim()), registryUrl: registryAt(ctx, raw.registry, ['models', name, 'registry']) };
  }
  if (ctx.raw.registry !== undefined) {
    return { kind: 'xprim', model: raw.model as string, version: raw.version as string, registry: stripTrailingSlash(ctx.raw.registry.trim()), registryUrl: topRegistryUrl ?? '' };
  }
  ctx.problems.push({
    offset: keyOffset(locate(ctx.doc, ['models', name])),
    message: `models.${name}: no registry: add a top-level "registry:" or one on this entry`,
    hint: 'e.g. registry: https://models.example.com',
  });
  return undefined;
}

/** The entry's folder under the root: checked, and not the folder of (or inside) another entry. */
function readInstallPath(ctx: ParseContext, name: string, raw: RawEntry, claimed: ClaimedPath[], line: number): string | undefined {
  const entryKey = locate(ctx.doc, ['models', name]);
  let path = name;
  if (raw.path !== undefined) {
    const checked = checkInstallPath(raw.path);
    if ('problem' in checked) {
      ctx.problems.push({ offset: valueOffset(locate(ctx.doc, ['models', name, 'path'])), message: `models.${name}: ${checked.problem}` });
      return undefined;
    }
    path = checked.path;
  } else {
    const reserved = reservedSegment(name);
    if (reserved) {
      ctx.problems.push({ offset: keyOffset(entryKey), message: `models.${name}: install path ${reserved}`, hint: 'rename the entry, or give it a `path:`' });
      return undefined;
    }
  }
  // Case-folded: "A" and "a" are one folder on macOS and Windows.
  const folded = path.toLowerCase();
  const clash = claimed.find((c) => c.folded === folded || folded.startsWith(`${c.folded}/`) || c.folded.startsWith(`${folded}/`));
  if (clash) {
    const how = clash.folded === folded ? 'is also the install path of' : 'overlaps the install path of';
    ctx.problems.push({
      offset: raw.path !== undefined ? valueOffset(locate(ctx.doc, ['models', name, 'path'])) : keyOffset(entryKey),
      message: `models.${name}: install path "${path}" ${how} "${clash.name}" ("${clash.path}", line ${clash.line})`,
      hint: 'give each entry its own folder with "path:"; no folder may hold another entry',
    });
  }
  claimed.push({ path, folded, name, line });
  return path;
}

export async function loadConfig(file: string): Promise<ProjectConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ModelsError('E_CONFIG', `${file}: no models.yaml found`, {
        hint: 'create one: see README',
        file,
        cause: error,
      });
    }
    throw new ModelsError('E_CONFIG', `${file}: cannot read: ${(error as Error).message}`, {
      hint: 'check the path given to --config and its permissions',
      file,
      cause: error,
    });
  }
  return parseConfig(text, file);
}

