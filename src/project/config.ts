/**
 * models.yaml (version 1): parse with `yaml` keeping node ranges, validate with ajv against the
 * shipped schema, then the semantic checks a schema cannot express. Every problem becomes one
 * E_CONFIG error whose message starts with `<file>:<line>:<col>: ` and says what was expected.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { ErrorObject } from 'ajv';
import validateModelsSchema from '../generated/models-schema-validator.js';
import { LineCounter, parseDocument, isScalar } from 'yaml';
import { ModelsError } from '../util/errors.js';
import { type Problem, Reporter, keyOffset, locate, schemaProblem, valueOffset } from './config-problems.js';
import { checkInstallPath, checkRegistry, checkRoot, reservedSegment, stripTrailingSlash } from './config-values.js';

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

