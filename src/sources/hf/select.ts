/**
 * `files:` and `exclude:` of an hf: entry: globs over the repo's paths (picomatch: `*` stays within
 * one folder, `**` crosses folders; dot files match). A `files:` pattern that matches nothing is an
 * error naming it, so a typo or a pattern missing `**` never installs a model without its weights.
 */
import picomatch from 'picomatch';
import { ModelsError } from '../../util/errors.js';

const OPTIONS = { dot: true } as const;

export function selectFiles<T extends { path: string }>(files: T[], include: string[], exclude: string[], label: string): T[] {
  const excluded = exclude.length > 0 ? picomatch(exclude, OPTIONS) : () => false;
  const candidates = files.filter((f) => !excluded(f.path));
  if (include.length === 0) {
    if (candidates.length === 0) throw new ModelsError('E_NOT_FOUND', `${label}: exclude: leaves no file to install`, { hint: 'check exclude: in models.yaml' });
    return candidates;
  }
  const matchers = include.map((pattern) => ({ pattern, match: picomatch(pattern, OPTIONS) }));
  const unmatched = matchers.filter(({ match }) => !candidates.some((f) => match(f.path))).map(({ pattern }) => pattern);
  if (unmatched.length > 0) {
    const sample = files.slice(0, 8).map((f) => f.path).join(', ');
    const deep = unmatched.some((p) => !p.includes('/')) && files.some((f) => f.path.includes('/'));
    throw new ModelsError('E_NOT_FOUND', `${label}: files: ${unmatched.map((p) => JSON.stringify(p)).join(', ')} match${unmatched.length === 1 ? 'es' : ''} no file${exclude.length > 0 ? ' (after exclude:)' : ''}; the repo has ${files.length}: ${sample}${files.length > 8 ? ', …' : ''}`, {
      hint: deep ? '`*` does not cross folders: use `**/*.onnx` for every folder, or `onnx/*.onnx` for one' : 'check files: in models.yaml against the repo\'s paths',
    });
  }
  return candidates.filter((f) => matchers.some(({ match }) => match(f.path)));
}
