/** Finding models in an integrity file: by name (modelPath) or by names and tags (checkModels' `only`). */
import { join } from 'node:path';
import { HINT_INSTALL, HINT_REINSTALL, ReadinessError } from './errors.js';
import { type Integrity, type IntegrityModel, readIntegritySync } from './integrity.js';

/** The paths were validated, so this cannot leave the root lexically; symlinks are checked at check time. */
export function absoluteFolder(integrity: Integrity, model: IntegrityModel): string {
  return join(integrity.root, ...model.path.split('/'));
}

/** The absolute install folder of one model. Synchronous, for start-up code that needs a path right away. */
export function modelPath(integrityFileOrRoot: string, name: string): string {
  const integrity = readIntegritySync(integrityFileOrRoot);
  const model = integrity.models.find((m) => m.name === name);
  if (!model) throw unknownName(integrity, name);
  return absoluteFolder(integrity, model);
}

export function unknownName(integrity: Integrity, name: string): ReadinessError {
  const names = integrity.models.map((m) => m.name);
  const tags = [...new Set(integrity.models.flatMap((m) => m.tags))].sort();
  const known = names.length === 0 ? 'it lists no models' : `known: ${names.join(', ')}${tags.length ? `; tags: ${tags.join(', ')}` : ''}`;
  return new ReadinessError('E_UNKNOWN_MODEL', `no model named "${name}" in ${integrity.file} (${known})`, {
    hint: `add it to models.yaml and ${HINT_INSTALL}, or ${HINT_REINSTALL}`,
    file: integrity.file,
  });
}

export function select(integrity: Integrity, only: string[] | undefined): IntegrityModel[] {
  if (only === undefined) return integrity.models;
  if (!Array.isArray(only)) throw new ReadinessError('E_USAGE', 'checkModels: only must be an array of model names or tags');
  const chosen = new Set<IntegrityModel>();
  for (const key of only) {
    const matches = integrity.models.filter((m) => m.name === key || m.tags.includes(key));
    if (matches.length === 0) throw unknownName(integrity, key);
    for (const m of matches) chosen.add(m);
  }
  return integrity.models.filter((m) => chosen.has(m));
}
