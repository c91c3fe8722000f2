/** The values of models.yaml that name places: registries, install paths, the install root. */
import { isAbsolute, posix, relative, resolve, sep, win32 } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ModelsError } from '../util/errors.js';
import { checkFolderPath } from '../util/paths.js';
import { isLoopbackHost } from '../util/urls.js';

const REGISTRY_FORMS = 'expected https://, http:// to a loopback host, file:///abs/path or a plain path';

// --- registries ----------------------------------------------------------------------------------

export function stripTrailingSlash(value: string): string {
  let out = value;
  while (out.length > 1 && out.endsWith('/') && !out.endsWith('//')) out = out.slice(0, -1);
  return out;
}


/** Resolve one registry value, or say what is wrong with it. */
export function checkRegistry(raw: string, baseDir: string): { url: string } | { problem: string; hint?: string } {
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

export function checkInstallPath(raw: string): { path: string } | { problem: string } {
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
export function checkRoot(raw: string, dir: string): { root: string } | { problem: string; hint?: string } {
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

