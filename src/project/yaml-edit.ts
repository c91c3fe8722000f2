/**
 * Edits of models.yaml that keep what a person wrote: comments, key order, quoting and layout,
 * through the yaml library's Document API (as `cargo add` keeps Cargo.toml). Every edit is checked
 * by the full parser before it is written, so a bad edit never reaches the file.
 */
import { isMap, parseDocument, type Document } from 'yaml';
import { ModelsError } from '../util/errors.js';
import { type ProjectConfig, parseConfig } from './config.js';

export const NEW_CONFIG = 'version: 1\nmodels: {}\n';

function documentOf(text: string, file: string): Document {
  const doc = parseDocument(text, { keepSourceTokens: true });
  if (doc.errors.length > 0 || !isMap(doc.contents)) {
    throw new ModelsError('E_CONFIG', `${file}: cannot edit: not a valid models.yaml`, { hint: 'fix it first (`models lock` names the problem)', file });
  }
  return doc;
}

/** models.yaml with `entry` added as models.<name>; throws E_CONFIG (naming the key) when the result is invalid. */
export function addEntry(text: string, file: string, name: string, entry: Record<string, unknown>): { text: string; config: ProjectConfig } {
  const doc = documentOf(text, file);
  if (doc.hasIn(['models', name])) {
    throw new ModelsError('E_USAGE', `${file} already has a model named "${name}"`, { hint: 'choose another with --name, or `models remove` it first' });
  }
  const models = doc.getIn(['models'], true);
  if (!isMap(models)) doc.setIn(['models'], doc.createNode({}));
  const map = doc.getIn(['models'], true);
  // `models: {}` is a flow map: entries added to it go on their own lines.
  if (isMap(map)) map.flow = false;
  doc.setIn(['models', name], doc.createNode(entry));
  const out = doc.toString({ lineWidth: 0 });
  return { text: out, config: parseConfig(out, file) };
}

/** models.yaml without the named entries; throws E_USAGE for a name it does not have. */
export function removeEntries(text: string, file: string, names: string[]): { text: string; config: ProjectConfig } {
  const doc = documentOf(text, file);
  const unknown = names.filter((n) => !doc.hasIn(['models', n]));
  if (unknown.length > 0) {
    const known = parseConfig(text, file).models.map((m) => m.name);
    throw new ModelsError('E_USAGE', `${file} has no model named ${unknown.map((n) => `"${n}"`).join(', ')}`, { hint: `models: ${known.join(', ') || '(none)'}` });
  }
  for (const name of names) doc.deleteIn(['models', name]);
  const out = doc.toString({ lineWidth: 0 });
  return { text: out, config: parseConfig(out, file) };
}
