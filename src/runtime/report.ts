/** The plain-text report (ReadinessReport.toText): a table of models and tags, then each problem with a hint. */
import { HINT_INSTALL, HINT_REINSTALL } from './errors.js';
import type { Integrity } from './integrity.js';
import type { ModelReport, ModelState } from './types.js';

function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
}

function hintFor(model: ModelReport, root: string): string {
  const reasons = model.files.filter((f) => f.state !== 'ready').map((f) => f.reason ?? '');
  const install = `${HINT_INSTALL} --root ${root}`;
  if (model.state === 'missing') return `${install} (developer machine), or ${HINT_REINSTALL}`;
  if (reasons.some((r) => r.startsWith('resolves outside'))) return `a symlink points outside ${root}; ${HINT_REINSTALL}`;
  if (reasons.some((r) => r.startsWith('mtime changed'))) {
    return `files were modified after install; run: models verify, then ${install} --verify, or ${HINT_REINSTALL}`;
  }
  return `${install} --verify to repair (developer machine), or ${HINT_REINSTALL}`;
}

const MAX_FILES_SHOWN = 5;

export function renderText(
  integrity: Integrity,
  mode: 'fast' | 'full',
  ready: boolean,
  models: Record<string, ModelReport>,
  tags: Record<string, ModelState>,
): string {
  const list = Object.values(models);
  const bad = list.filter((m) => m.state !== 'ready');
  const lines: string[] = [];
  lines.push(
    ready
      ? `Models: READY (${list.length} of ${list.length} ready)`
      : `Models: NOT READY (${bad.length} of ${list.length} need attention)`,
  );
  lines.push(`integrity file: ${integrity.file}`);
  lines.push(`check: ${mode === 'full' ? 'full (sha256 of every file)' : 'fast (existence and size)'}${integrity.generator ? `; installed by ${integrity.generator}` : ''}`);
  lines.push('');
  if (list.length === 0) {
    lines.push('(no models)');
  } else {
    const rows = [['MODEL', 'STATE', 'SOURCE', 'VERSION', 'TAGS', 'PATH']];
    for (const m of list) {
      const version = m.resolved === m.version ? m.version : `${m.version} (${m.resolved})`;
      rows.push([m.name, m.state, m.model, version, m.tags.join(',') || '-', m.path]);
    }
    lines.push(...table(rows));
  }
  const tagNames = Object.keys(tags);
  if (tagNames.length > 0) {
    lines.push('');
    const rows = [['TAG', 'STATE', 'MODELS']];
    for (const tag of tagNames) {
      rows.push([tag, tags[tag] as ModelState, list.filter((m) => m.tags.includes(tag)).map((m) => m.name).join(',')]);
    }
    lines.push(...table(rows));
  }
  if (bad.length > 0) {
    lines.push('', 'Problems:');
    for (const m of bad) {
      const failing = m.files.filter((f) => f.state !== 'ready');
      lines.push(`  ${m.name}: ${m.state}`);
      if (failing.length === 0) lines.push(`    ${m.path}: folder not found`);
      for (const f of failing.slice(0, MAX_FILES_SHOWN)) lines.push(`    ${f.path}: ${f.reason ?? f.state}`);
      if (failing.length > MAX_FILES_SHOWN) lines.push(`    ... and ${failing.length - MAX_FILES_SHOWN} more`);
      lines.push(`    hint: ${hintFor(m, integrity.root)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

