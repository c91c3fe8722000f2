/**
 * models.yaml (version 1): parse with `yaml` keeping node ranges, validate with ajv against the
 * shipped schema, then the semantic checks a schema cannot express. Every problem becomes one
 * E_CONFIG error whose message starts with `<file>:<line>:<col>: ` and says what was expected.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, posix, relative, resolve, dirname, sep, win32 } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ErrorObject } from 'ajv';
import validateModelsSchema from '../generated/models-schema-validator.js';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { ModelsError } from '../util/errors.js';
import { checkFolderPath } from '../util/paths.js';

export interface WhenClause {
  os?: string[];
  arch?: string[];
}

export interface ModelEntry {
  /** Local name, ^[a-z0-9][a-z0-9._-]{0,63}$. */
  name: string;
  /** "<group>/<model>" as written. */
  model: string;
  version: string;
  /** Effective registry as written (trailing "/" removed): machine-independent, recorded in the lock. */
  registry: string;
  /** The same, resolved: an http(s) URL or an absolute file:// URL, without trailing slash. */
  registryUrl: string;
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

export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const NAME_RULE = 'lowercase letters, digits, ".", "_" or "-", starting with a letter or digit, at most 64 characters';
const CONFIG_HINT = 'fix models.yaml (the schema is schema/models.schema.json in the xprim-models package)';
const REGISTRY_FORMS = 'expected https://, http:// to a loopback host, file:///abs/path or a plain path';

const OS_NAMES = ['aix', 'android', 'darwin', 'freebsd', 'haiku', 'linux', 'openbsd', 'netbsd', 'sunos', 'win32', 'cygwin'];
const ARCH_NAMES = ['arm', 'arm64', 'ia32', 'loong64', 'mips', 'mipsel', 'ppc', 'ppc64', 'riscv64', 's390', 's390x', 'x64'];
// Names people write from habit, mapped to Node's.
const PLATFORM_ALIASES: Record<string, string> = {
  macos: 'darwin',
  mac: 'darwin',
  osx: 'darwin',
  windows: 'win32',
  win: 'win32',
  win64: 'win32',
  amd64: 'x64',
  x86_64: 'x64',
  'x86-64': 'x64',
  aarch64: 'arm64',
  x86: 'ia32',
  i386: 'ia32',
  i686: 'ia32',
};

// --- small helpers -------------------------------------------------------------------------------

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost));
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

/** The closest candidate, when it is close enough to be a plausible typo. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const alias = PLATFORM_ALIASES[word.toLowerCase()];
  if (alias && candidates.includes(alias)) return alias;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return `${typeof value} ${String(value)}`;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  array: 'a list',
  object: 'a mapping',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
};

function displayPath(segments: readonly string[]): string {
  let out = '';
  for (const segment of segments) {
    if (/^\d+$/.test(segment) && out !== '') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}

function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

// --- locating YAML nodes -------------------------------------------------------------------------

interface Located {
  /** The value node at the path, when the walk got there. */
  value?: Node;
  /** The key node of the last map step. */
  key?: Node;
  /** The deepest node reached (the whole path may not exist). */
  deepest?: Node;
}

function locate(doc: Document, segments: readonly string[]): Located {
  let current: unknown = doc.contents;
  let key: Node | undefined;
  let deepest: Node | undefined = (doc.contents as Node | null) ?? undefined;
  for (const segment of segments) {
    if (isMap(current)) {
      const pair = current.items.find((p) => isScalar(p.key) && String(p.key.value) === segment);
      if (!pair) return { key, deepest };
      key = pair.key as Node;
      deepest = (pair.value as Node | null) ?? key;
      current = pair.value;
    } else if (isSeq(current)) {
      const item = current.items[Number(segment)];
      if (item === undefined) return { deepest };
      key = undefined;
      current = item;
      deepest = item as Node;
    } else {
      return { key, deepest };
    }
  }
  return { value: (current as Node | null) ?? undefined, key, deepest };
}

function startOf(node: Node | undefined): number | undefined {
  return node?.range?.[0];
}

/** A value node that is an empty `key:` has no text of its own: point at its key instead. */
function valueOffset(found: Located): number {
  const v = found.value;
  const empty = isScalar(v) && v.value === null && v.range != null && v.range[0] === v.range[1];
  return (empty ? startOf(found.key) : startOf(v)) ?? startOf(found.key) ?? startOf(found.deepest) ?? 0;
}

function keyOffset(found: Located): number {
  return startOf(found.key) ?? startOf(found.value) ?? startOf(found.deepest) ?? 0;
}

interface Problem {
  offset: number;
  message: string;
  hint?: string;
  /** Reported after rank-0 problems: a missing key is often explained by a misspelt one. */
  rank?: number;
}

class Reporter {
  constructor(
    private readonly file: string,
    private readonly lineCounter: LineCounter,
  ) {}

  error(problem: Problem, more = 0): ModelsError {
    const { line, col } = this.lineCounter.linePos(problem.offset);
    const suffix = more > 0 ? ` (and ${more} more problem${more === 1 ? '' : 's'})` : '';
    return new ModelsError('E_CONFIG', `${this.file}:${line}:${col}: ${problem.message}${suffix}`, {
      hint: problem.hint ?? CONFIG_HINT,
      file: this.file,
      line,
      column: col,
    });
  }

  /** Throw the problem that comes first in the file, mentioning how many others there are. */
  throwFirst(problems: Problem[]): void {
    if (problems.length === 0) return;
    const sorted = [...problems].sort((a, b) => (a.rank ?? 0) - (b.rank ?? 0) || a.offset - b.offset);
    throw this.error(sorted[0] as Problem, sorted.length - 1);
  }
}

// --- schema validation ---------------------------------------------------------------------------

// Precompiled from the schema at build time (scripts/build-validator.mjs): no ajv compile per run.
const validateSchema = validateModelsSchema as ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

function sourceText(node: Node | undefined, text: string): string | undefined {
  return node?.range ? text.slice(node.range[0], node.range[1]).trim() : undefined;
}

function schemaProblem(doc: Document, text: string, error: ErrorObject): Problem | undefined {
  const segments = pointerSegments(error.instancePath);
  const where = displayPath(segments);
  const at = (s: string) => (where === '' ? s : `${where}: ${s}`);
  const found = locate(doc, segments);
  const params = error.params as Record<string, unknown>;
  const parentSchema = (error.parentSchema ?? {}) as { properties?: Record<string, unknown> };
  switch (error.keyword) {
    case 'type': {
      const expected = TYPE_NAMES[String(params.type)] ?? String(params.type);
      const quote =
        params.type === 'string' && (typeof error.data === 'number' || typeof error.data === 'boolean')
          ? `quote it: "${sourceText(found.value, text) ?? String(error.data)}"`
          : undefined;
      return { offset: valueOffset(found), message: at(`expected ${expected}, got ${describe(error.data)}`), hint: quote };
    }
    case 'const':
      if (where === 'version') {
        return {
          offset: valueOffset(found),
          message: `version: expected 1, got ${describe(error.data)}`,
          hint:
            typeof error.data === 'number' && error.data > 1
              ? 'this models.yaml needs a newer xprim-models: upgrade it'
              : 'start models.yaml with "version: 1"',
        };
      }
      return { offset: valueOffset(found), message: at(`expected ${JSON.stringify(params.allowedValue)}`) };
    case 'required': {
      const missing = String(params.missingProperty);
      const message =
        where === ''
          ? `missing required top-level key "${missing}"`
          : `${where}: missing required key "${missing}"`;
      return { offset: keyOffset(found), message, rank: 1 };
    }
    case 'additionalProperties': {
      const extra = String(params.additionalProperty);
      const candidates = Object.keys(parentSchema.properties ?? {}).filter((k) => k !== 'url' && k !== 'hf');
      const guess = suggest(extra, candidates);
      const keyFound = locate(doc, [...segments, extra]);
      return {
        offset: keyOffset(keyFound),
        message: at(`unknown key "${extra}"${guess ? ` (did you mean "${guess}"?)` : ''}`),
        hint: `allowed keys here: ${candidates.join(', ')}`,
      };
    }
    case 'not': {
      const key = segments[segments.length - 1] ?? '';
      return {
        offset: keyOffset(found),
        message: `${displayPath(segments.slice(0, -1))}: "${key}:" entries are not supported in version 1`,
        hint: 'use a registry entry (model + version); url: and hf: sources are reserved for a later version',
      };
    }
    case 'propertyNames':
      return undefined; // reported by the nested "pattern" error, which names the property
    case 'pattern': {
      if (error.propertyName !== undefined) {
        const name = error.propertyName;
        return {
          offset: keyOffset(locate(doc, [...segments, name])),
          message: `model name "${name}": expected ${NAME_RULE}`,
        };
      }
      const last = segments[segments.length - 2] === 'tags' ? 'tags' : segments[segments.length - 1];
      const expected =
        last === 'model'
          ? 'expected <group>/<model> (e.g. silero/vad)'
          : last === 'tags'
            ? `expected a tag of ${NAME_RULE}`
            : last === 'version'
              ? 'expected a version name without spaces'
              : `expected to match ${String(params.pattern)}`;
      return { offset: valueOffset(found), message: at(`${expected}, got ${describe(error.data)}`) };
    }
    case 'minLength':
      return { offset: valueOffset(found), message: at('expected a non-empty string') };
    case 'minItems':
      return { offset: valueOffset(found), message: at('expected at least one item') };
    case 'uniqueItems': {
      const index = Math.max(Number(params.i), Number(params.j));
      const item = locate(doc, [...segments, String(index)]);
      const data = error.data as unknown[];
      return { offset: valueOffset(item), message: at(`duplicate item ${describe(data[index])}`) };
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map(String);
      const guess = typeof error.data === 'string' ? suggest(error.data, allowed) : undefined;
      const kind = segments[segments.length - 2] ?? 'value';
      return {
        offset: valueOffset(found),
        message: at(
          `unknown ${kind} ${describe(error.data)}${guess ? ` (did you mean "${guess}"?)` : ''}: expected one of ${allowed.join(', ')}`,
        ),
        hint: 'use Node names: process.platform for os, process.arch for arch',
      };
    }
    default:
      return { offset: valueOffset(found), message: at(error.message ?? `failed ${error.keyword}`) };
  }
}

// --- registries ----------------------------------------------------------------------------------

function stripTrailingSlash(value: string): string {
  let out = value;
  while (out.length > 1 && out.endsWith('/') && !out.endsWith('//')) out = out.slice(0, -1);
  return out;
}

function isLoopbackHost(hostname: string): boolean {
  if (hostname === 'localhost' || hostname === '[::1]') return true;
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(hostname);
  return m !== null && m[1] === '127';
}

/** Resolve one registry value, or say what is wrong with it. */
function checkRegistry(raw: string, baseDir: string): { url: string } | { problem: string; hint?: string } {
  const value = raw.trim();
  const bad = (reason: string, hint?: string) => ({ problem: `registry ${JSON.stringify(raw)}: ${reason}`, hint });
  if (value === '') return bad('expected a non-empty value');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) return bad('contains a control character');
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(value)?.[1];
  // A one-letter "scheme" is a Windows drive letter: a plain path.
  if (scheme !== undefined && !(scheme.length === 1 && /^[a-zA-Z]:[\\/]/.test(value))) {
    const lower = scheme.toLowerCase();
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return bad(`not a valid URL: ${REGISTRY_FORMS}`);
    }
    if (lower === 'https' || lower === 'http') {
      if (url.username !== '' || url.password !== '') {
        return bad('must not contain credentials', 'set MODELS_TOKEN instead: it is sent only to configured registries');
      }
      if (url.search !== '' || url.hash !== '') return bad('expected a base URL without ?query or #fragment');
      if (lower === 'http' && !isLoopbackHost(url.hostname)) {
        return bad(`${REGISTRY_FORMS} (plain http is allowed only to 127.0.0.1, ::1 or localhost)`, 'use https://');
      }
      return { url: stripTrailingSlash(url.href) };
    }
    if (lower === 'file') {
      if (url.host !== '' && url.host !== 'localhost') {
        return bad(`expected file:///abs/path (three slashes), or a plain path relative to models.yaml`);
      }
      if (url.search !== '' || url.hash !== '') return bad('expected a file URL without ?query or #fragment');
      let path: string;
      try {
        path = fileURLToPath(url);
      } catch (error) {
        return bad(`not a usable file URL: ${error instanceof Error ? error.message : String(error)}`);
      }
      return { url: stripTrailingSlash(pathToFileURL(path).href) };
    }
    return bad(REGISTRY_FORMS);
  }
  if (value === '~' || value.startsWith('~/') || value.startsWith('~\\')) {
    return bad('"~" is not expanded', 'use a path relative to models.yaml, or an absolute path');
  }
  return { url: stripTrailingSlash(pathToFileURL(resolve(baseDir, value)).href) };
}

/** Validate and resolve a registry or mirror value; `where` names its origin in the message. */
export function resolveRegistry(value: string, baseDir: string, where: string): string {
  const result = checkRegistry(value, baseDir);
  if ('url' in result) return result.url;
  throw new ModelsError('E_CONFIG', `${where}: ${result.problem}`, {
    hint: result.hint ?? 'fix the registry value',
  });
}

// --- install paths -------------------------------------------------------------------------------

function checkInstallPath(raw: string): { path: string } | { problem: string } {
  const slashed = raw.replace(/\\/g, '/');
  if (posix.isAbsolute(slashed) || win32.isAbsolute(raw) || /^[a-zA-Z]:/.test(slashed)) {
    return { problem: `path ${JSON.stringify(raw)}: expected a path relative to root, got an absolute path` };
  }
  const normalised = posix.normalize(slashed).replace(/\/+$/, '');
  if (normalised === '..' || normalised.startsWith('../')) {
    return { problem: `path ${JSON.stringify(raw)}: must stay inside the install root` };
  }
  if (normalised === '.' || normalised === '') {
    return { problem: `path ${JSON.stringify(raw)}: must name a folder inside the install root, not the root itself` };
  }
  const issue = checkFolderPath(normalised) ?? reservedSegment(normalised);
  if (issue) return { problem: `path ${JSON.stringify(raw)}: ${issue}` };
  return { path: normalised };
}

/**
 * Names the tool keeps for itself in an install root (state, locks, temp files, staging and
 * moved-aside folders), and dot-folders (`.git`, `.ssh`, `.config`): no model may be installed
 * there, or an install would overwrite the repository or the tool would later delete the model.
 */
export function reservedSegment(path: string): string | undefined {
  for (const segment of path.split('/')) {
    const lower = segment.toLowerCase();
    if (segment.startsWith('.')) return `"${segment}" is a dot-folder (such as .git): models may not be installed there`;
    if (lower === 'models.integrity.json' || lower.includes('.xprim-') || lower.endsWith('.tmp')) {
      return `"${segment}" is a name xprim-models reserves for its own files (models.integrity.json, .xprim-*, *.tmp)`;
    }
  }
  return undefined;
}

/**
 * `root:` relative to the project must name a folder inside it (never the project folder, a parent
 * or a dot-folder); an absolute root may be anywhere but the project folder or one of its parents.
 */
function checkRoot(raw: string, dir: string): { root: string } | { problem: string; hint?: string } {
  const absolute = isAbsolute(raw);
  const root = absolute ? resolve(raw) : resolve(dir, raw);
  const fromProject = relative(root, dir);
  if (fromProject === '' || (!fromProject.startsWith('..') && !isAbsolute(fromProject))) {
    return { problem: `root ${JSON.stringify(raw)}: is the project folder ${dir}${fromProject ? ' or one of its parents' : ''}; installing there would replace its files`, hint: 'use a folder of its own, e.g. root: models' };
  }
  if (absolute) return { root };
  const inside = relative(dir, root).split(sep).join('/');
  if (inside.startsWith('../') || inside === '..' || isAbsolute(inside)) {
    return { problem: `root ${JSON.stringify(raw)}: leaves the project folder ${dir}`, hint: 'use a folder inside the project, or an absolute path for a root elsewhere (it must be empty or hold only models)' };
  }
  const reserved = reservedSegment(inside);
  if (reserved) return { problem: `root ${JSON.stringify(raw)}: ${reserved}`, hint: 'use a plain folder such as root: models' };
  return { root };
}

// --- parse ---------------------------------------------------------------------------------------

interface RawEntry {
  model: string;
  version: string;
  registry?: string;
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

export function parseConfig(text: string, file: string): ProjectConfig {
  const lineCounter = new LineCounter();
  const reporter = new Reporter(file, lineCounter);
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });

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
    throw reporter.error({
      offset: 0,
      message: 'models.yaml is empty: expected a mapping with "version: 1", "registry:" and "models:"',
      hint: 'create one: see README',
    });
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // An alias with no anchor, or an alias bomb: the yaml library throws plain errors for these.
    throw reporter.error({ offset: 0, message: `invalid YAML: ${(error as Error).message.split('\n')[0]}`, hint: 'fix the YAML syntax in models.yaml' });
  }
  if (!validateSchema(data)) {
    const problems = (validateSchema.errors ?? [])
      .map((error) => schemaProblem(doc, text, error))
      .filter((p): p is Problem => p !== undefined);
    reporter.throwFirst(problems);
  }
  const raw = data as RawConfig;

  const absFile = resolve(file);
  const dir = dirname(absFile);
  const problems: Problem[] = [];

  const resolveAt = (value: string, segments: string[]): string => {
    const result = checkRegistry(value, dir);
    if ('url' in result) return result.url;
    problems.push({ offset: valueOffset(locate(doc, segments)), message: result.problem, hint: result.hint });
    return '';
  };

  const mirrors = (raw.mirrors ?? []).map((m, i) => resolveAt(m, ['mirrors', String(i)]));
  const topRegistryUrl = raw.registry !== undefined ? resolveAt(raw.registry, ['registry']) : undefined;

  let root = resolve(dir, 'models');
  if (raw.root !== undefined) {
    const offset = valueOffset(locate(doc, ['root']));
    if (/^[a-zA-Z][a-zA-Z0-9+.-]+:\/\//.test(raw.root)) {
      problems.push({ offset, message: `root ${JSON.stringify(raw.root)}: expected a folder path, not a URL` });
    } else if (raw.root === '~' || raw.root.startsWith('~/')) {
      problems.push({
        offset,
        message: `root ${JSON.stringify(raw.root)}: "~" is not expanded`,
        hint: 'use a path relative to models.yaml, or an absolute path',
      });
      // eslint-disable-next-line no-control-regex
    } else if (/[\u0000-\u001f\u007f]/.test(raw.root)) {
      problems.push({ offset, message: `root ${JSON.stringify(raw.root)}: contains a control character` });
    } else {
      const checked = checkRoot(raw.root, dir);
      if ('root' in checked) root = checked.root;
      else problems.push({ offset, message: checked.problem, hint: checked.hint });
    }
  }

  const models: ModelEntry[] = [];
  const claimed: { path: string; folded: string; name: string; line: number }[] = [];
  for (const [name, entry] of Object.entries(raw.models)) {
    const entryKey = locate(doc, ['models', name]);
    const line = lineCounter.linePos(keyOffset(entryKey)).line;

    let registry: string;
    let registryUrl: string;
    if (entry.registry !== undefined) {
      registry = stripTrailingSlash(entry.registry.trim());
      registryUrl = resolveAt(entry.registry, ['models', name, 'registry']);
    } else if (raw.registry !== undefined) {
      registry = stripTrailingSlash(raw.registry.trim());
      registryUrl = topRegistryUrl ?? '';
    } else {
      problems.push({
        offset: keyOffset(entryKey),
        message: `models.${name}: no registry: add a top-level "registry:" or one on this entry`,
        hint: 'e.g. registry: https://models.example.com',
      });
      continue;
    }

    let path = name;
    if (entry.path !== undefined) {
      const checked = checkInstallPath(entry.path);
      if ('problem' in checked) {
        problems.push({ offset: valueOffset(locate(doc, ['models', name, 'path'])), message: `models.${name}: ${checked.problem}` });
        continue;
      }
      path = checked.path;
    } else {
      const reserved = reservedSegment(name);
      if (reserved) {
        problems.push({ offset: keyOffset(entryKey), message: `models.${name}: install path ${reserved}`, hint: 'rename the entry, or give it a `path:`' });
        continue;
      }
    }
    // Case-folded: "A" and "a" are one folder on macOS and Windows.
    const folded = path.toLowerCase();
    const clash = claimed.find(
      (c) => c.folded === folded || folded.startsWith(`${c.folded}/`) || c.folded.startsWith(`${folded}/`),
    );
    if (clash) {
      const pathNode = locate(doc, ['models', name, 'path']);
      const how = clash.folded === folded ? 'is also the install path of' : 'overlaps the install path of';
      problems.push({
        offset: entry.path !== undefined ? valueOffset(pathNode) : keyOffset(entryKey),
        message: `models.${name}: install path "${path}" ${how} "${clash.name}" ("${clash.path}", line ${clash.line})`,
        hint: 'give each entry its own folder with "path:"; no folder may hold another entry',
      });
    }
    claimed.push({ path, folded, name, line });

    const model: ModelEntry = {
      name,
      model: entry.model,
      version: entry.version,
      registry,
      registryUrl,
      path,
      tags: entry.tags ?? [],
      line,
    };
    if (entry.when !== undefined) {
      const when: WhenClause = {};
      if (entry.when.os !== undefined) when.os = entry.when.os;
      if (entry.when.arch !== undefined) when.arch = entry.when.arch;
      model.when = when;
    }
    models.push(model);
  }
  reporter.throwFirst(problems);

  return { file: absFile, dir, mirrors, root, models };
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

// --- platforms -----------------------------------------------------------------------------------

export function matchesPlatform(entry: ModelEntry, platform: { os: string; arch: string }): boolean {
  const { when } = entry;
  if (!when) return true;
  if (when.os && !when.os.includes(platform.os)) return false;
  if (when.arch && !when.arch.includes(platform.arch)) return false;
  return true;
}

/** "<os>-<arch>" in Node's names, e.g. linux-x64, darwin-arm64, win32-x64. */
export function parsePlatform(text: string): { os: string; arch: string } {
  const value = text.trim();
  const dash = value.indexOf('-');
  const os = dash < 0 ? value : value.slice(0, dash);
  const arch = dash < 0 ? '' : value.slice(dash + 1);
  if (OS_NAMES.includes(os) && ARCH_NAMES.includes(arch)) return { os, arch };
  const fixOs = OS_NAMES.includes(os) ? os : suggest(os, OS_NAMES);
  const fixArch = ARCH_NAMES.includes(arch) ? arch : suggest(arch, ARCH_NAMES);
  const guess = fixOs && fixArch ? ` (did you mean "${fixOs}-${fixArch}"?)` : '';
  throw new ModelsError('E_USAGE', `--platform ${JSON.stringify(text)}: expected <os>-<arch> in Node's names${guess}`, {
    hint: `e.g. linux-x64, darwin-arm64, win32-x64; os is one of ${OS_NAMES.join(', ')}; arch is one of ${ARCH_NAMES.join(', ')}`,
  });
}
