/**
 * How a models.yaml problem is reported: find the YAML node a problem is about (for file:line:col),
 * turn schema errors into one-line messages, and suggest the likely intended word.
 */
import type { ErrorObject } from 'ajv';
import { isMap, isScalar, isSeq, type LineCounter, type Document, type Node } from 'yaml';
import { ModelsError } from '../util/errors.js';
import { PLATFORM_ALIASES } from './platform.js';

export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const NAME_RULE = 'lowercase letters, digits, ".", "_" or "-", starting with a letter or digit, at most 64 characters';
const CONFIG_HINT = 'fix models.yaml (the schema is schema/models.schema.json in the xprim-models package)';

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

export function describe(value: unknown): string {
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

export interface Located {
  /** The value node at the path, when the walk got there. */
  value?: Node;
  /** The key node of the last map step. */
  key?: Node;
  /** The deepest node reached (the whole path may not exist). */
  deepest?: Node;
}

export function locate(doc: Document, segments: readonly string[]): Located {
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
export function valueOffset(found: Located): number {
  const v = found.value;
  const empty = isScalar(v) && v.value === null && v.range != null && v.range[0] === v.range[1];
  return (empty ? startOf(found.key) : startOf(v)) ?? startOf(found.key) ?? startOf(found.deepest) ?? 0;
}

export function keyOffset(found: Located): number {
  return startOf(found.key) ?? startOf(found.value) ?? startOf(found.deepest) ?? 0;
}

export interface Problem {
  offset: number;
  message: string;
  hint?: string;
  /** Reported after rank-0 problems: a missing key is often explained by a misspelt one. */
  rank?: number;
}

export class Reporter {
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

function sourceText(node: Node | undefined, text: string): string | undefined {
  return node?.range ? text.slice(node.range[0], node.range[1]).trim() : undefined;
}

/** One schema error with where it points: its path, the YAML node there, and a prefix for messages. */
interface SchemaError {
  doc: Document;
  text: string;
  error: ErrorObject;
  segments: string[];
  /** The dotted path, '' at the top level. */
  where: string;
  found: Located;
  params: Record<string, unknown>;
  at: (message: string) => string;
}

/** A one-line message per ajv keyword; keywords without an entry keep ajv's own message. */
const KEYWORD_PROBLEMS: Record<string, (e: SchemaError) => Problem | undefined> = {
  type: typeProblem,
  const: constProblem,
  required: requiredProblem,
  additionalProperties: unknownKeyProblem,
  propertyNames: () => undefined, // reported by the nested "pattern" error, which names the property
  pattern: patternProblem,
  minLength: (e) => ({ offset: valueOffset(e.found), message: e.at('expected a non-empty string') }),
  minItems: (e) => ({ offset: valueOffset(e.found), message: e.at('expected at least one item') }),
  uniqueItems: duplicateProblem,
  enum: enumProblem,
};

export function schemaProblem(doc: Document, text: string, error: ErrorObject): Problem | undefined {
  const segments = pointerSegments(error.instancePath);
  const where = displayPath(segments);
  const at = (s: string) => (where === '' ? s : `${where}: ${s}`);
  const e: SchemaError = { doc, text, error, segments, where, found: locate(doc, segments), params: error.params as Record<string, unknown>, at };
  // Own keys only: a keyword such as "constructor" must not find Object.prototype's.
  if (Object.hasOwn(KEYWORD_PROBLEMS, error.keyword)) return (KEYWORD_PROBLEMS[error.keyword] as (e: SchemaError) => Problem | undefined)(e);
  return { offset: valueOffset(e.found), message: at(error.message ?? `failed ${error.keyword}`) };
}

function typeProblem({ error, params, found, text, at }: SchemaError): Problem {
  const expected = TYPE_NAMES[String(params.type)] ?? String(params.type);
  const quote =
    params.type === 'string' && (typeof error.data === 'number' || typeof error.data === 'boolean')
      ? `quote it: "${sourceText(found.value, text) ?? String(error.data)}"`
      : undefined;
  return { offset: valueOffset(found), message: at(`expected ${expected}, got ${describe(error.data)}`), hint: quote };
}

function constProblem({ error, params, found, where, at }: SchemaError): Problem {
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
}

/** Ranked after other problems: a missing key is often explained by a misspelt one. */
function requiredProblem({ params, found, where }: SchemaError): Problem {
  const missing = String(params.missingProperty);
  const message =
    where === ''
      ? `missing required top-level key "${missing}"`
      : `${where}: missing required key "${missing}"`;
  return { offset: keyOffset(found), message, rank: 1 };
}

function unknownKeyProblem({ doc, error, params, segments, at }: SchemaError): Problem {
  const parentSchema = (error.parentSchema ?? {}) as { properties?: Record<string, unknown> };
  const extra = String(params.additionalProperty);
  const candidates = Object.keys(parentSchema.properties ?? {});
  const guess = suggest(extra, candidates);
  const keyFound = locate(doc, [...segments, extra]);
  return {
    offset: keyOffset(keyFound),
    message: at(`unknown key "${extra}"${guess ? ` (did you mean "${guess}"?)` : ''}`),
    hint: `allowed keys here: ${candidates.join(', ')}`,
  };
}

/** Patterns are named by what they are for (a model name, a tag, `model:`), not shown as regexes. */
function patternProblem({ doc, error, params, segments, found, at }: SchemaError): Problem {
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

/** Points at the second of the two equal items. */
function duplicateProblem({ doc, error, params, segments, at }: SchemaError): Problem {
  const index = Math.max(Number(params.i), Number(params.j));
  const item = locate(doc, [...segments, String(index)]);
  const data = error.data as unknown[];
  return { offset: valueOffset(item), message: at(`duplicate item ${describe(data[index])}`) };
}

function enumProblem({ error, params, segments, found, at }: SchemaError): Problem {
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

