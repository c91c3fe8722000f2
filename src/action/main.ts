/**
 * The GitHub Action (action.yml → dist/index.js, bundled by scripts/bundle-action.mjs). A thin layer
 * over the programmatic API: inputs become API options, results become outputs, log groups, a job
 * summary and annotations. No install logic lives here.
 */
import { relative, sep } from 'node:path';
import * as core from '@actions/core';
import { type InstallEvent, type InstallResult, type ModelResult, type OutdatedEntry, type Project, install, isModelsError, loadProject, outdated, verify } from '../index.js';
import { formatBytes } from '../util/units.js';
import { cacheAvailable, cacheKey, restoreChunkCache, saveChunkCache } from './cache.js';
import { type ActionInputs, readInputs } from './inputs.js';

type Cell = string | { data: string; header: true };
const header = (...names: string[]): Cell[] => names.map((data) => ({ data, header: true }));
const seconds = (ms: number): string => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
/** The summary is HTML: registry-supplied paths and error text must not become markup. */
const html = (text: string): string => text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
const cells = (row: string[]): string[] => row.map(html);

/** Annotation paths are relative to the repository root, with forward slashes. */
function workspacePath(file: string, env: NodeJS.ProcessEnv): string {
  const rel = relative(env.GITHUB_WORKSPACE || process.cwd(), file);
  return rel.startsWith('..') ? file : rel.split(sep).join('/');
}

function entryLine(project: Project, name: string): number | undefined {
  return project.config.models.find((m) => m.name === name)?.line;
}

async function writeSummary(build: (summary: typeof core.summary) => void): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  try {
    build(core.summary);
    await core.summary.write();
  } catch (error) {
    core.warning(`could not write the job summary: ${error instanceof Error ? error.message : String(error)}`);
  }
}

// --- install -----------------------------------------------------------------------------------

/** One log group per model, printed whole when the model finishes: concurrent models never interleave. */
function logEvent(event: InstallEvent): void {
  if (event.type === 'locked') {
    if (event.written) core.info(`models.lock updated (${event.changes} change${event.changes === 1 ? '' : 's'}${event.removed ? `, ${event.removed} removed` : ''})`);
    return;
  }
  if (event.type === 'removed') {
    core.info(`removed ${event.name} (${event.path})`);
    return;
  }
  if (event.type !== 'done' && event.type !== 'skipped') return;
  const r = event.result;
  core.startGroup(`${r.name}: ${r.model}@${r.resolved} (${event.type === 'skipped' ? 'up to date' : `from ${r.source}`})`);
  core.info(`path: ${r.path}`);
  core.info(`size: ${formatBytes(r.size)}, manifest ${r.manifest}`);
  if (event.type === 'done') {
    core.info(`downloaded ${formatBytes(r.bytesDownloaded)}, from cache ${formatBytes(r.bytesFromCache)}, in ${seconds(r.durationMs)}`);
    if (r.repaired.length > 0) core.info(`repaired: ${r.repaired.join(', ')}`);
  }
  core.endGroup();
}

function installedOutput(result: InstallResult): object[] {
  return [...result.installed, ...result.skipped]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((r: ModelResult) => ({
      name: r.name,
      model: r.model,
      version: r.version,
      resolved: r.resolved,
      manifest: r.manifest,
      path: r.path,
      size: r.size,
      source: r.source,
      bytesDownloaded: r.bytesDownloaded,
      durationMs: r.durationMs,
    }));
}

async function runInstall(inputs: ActionInputs, project: Project, signal: AbortSignal): Promise<void> {
  const useCache = inputs.cache && cacheAvailable();
  let cacheHit = false;
  let restoredKey: string | undefined;
  if (useCache) {
    const key = await cacheKey(project.lockPath, inputs.env);
    restoredKey = await restoreChunkCache(inputs.cacheDir, key, inputs.env);
    cacheHit = restoredKey === key;
    core.info(restoredKey ? `chunk cache restored from ${restoredKey}` : `no chunk cache for ${key}`);
  } else if (inputs.cache) {
    core.info('the Actions cache service is not available here: the chunk cache is not carried between runs');
  }

  const result = await install(project, {
    frozen: inputs.frozen,
    only: inputs.only,
    ...(inputs.root ? { root: inputs.root } : {}),
    ...(inputs.concurrency ? { concurrency: inputs.concurrency } : {}),
    cacheDir: inputs.cacheDir,
    env: inputs.env,
    signal,
    onEvent: logEvent,
  });

  if (useCache) {
    // Keyed on the lock as it is now: a non-frozen install may just have written it. A cache
    // restored under exactly this key already holds everything (entries are immutable anyway).
    const key = await cacheKey(project.lockPath, inputs.env);
    if (key !== restoredKey && (await saveChunkCache(inputs.cacheDir, key))) core.info(`chunk cache saved as ${key}`);
  }

  core.setOutput('cache-hit', cacheHit);
  core.setOutput('installed', JSON.stringify(installedOutput(result)));
  core.setOutput('bytes-downloaded', result.bytesDownloaded);
  core.setOutput('models-dir', result.root);

  const rows = [...result.installed, ...result.skipped].sort((a, b) => a.name.localeCompare(b.name));
  core.info(
    `${result.installed.length} installed, ${result.skipped.length} up to date, ${formatBytes(result.bytesDownloaded)} downloaded, ` +
      `${formatBytes(result.bytesFromCache)} from cache, in ${seconds(result.durationMs)}`,
  );
  await writeSummary((s) =>
    s
      .addHeading('Models installed', 2)
      .addTable([
        header('Model', 'Version', 'Size', 'Source', 'Time'),
        ...rows.map((r) => cells([`${r.name} (${r.model})`, r.resolved === r.version ? r.version : `${r.version} → ${r.resolved}`, formatBytes(r.size), r.source, seconds(r.durationMs)])),
      ])
      .addRaw(
        `${formatBytes(result.bytesDownloaded)} downloaded, ${formatBytes(result.bytesFromCache)} from cache` +
          (inputs.cache ? `, cache hit: ${cacheHit ? 'yes' : 'no'}` : '') +
          `, in ${seconds(result.durationMs)}.`,
        true,
      ),
  );
}

// --- outdated ----------------------------------------------------------------------------------

async function runOutdated(inputs: ActionInputs, project: Project, signal: AbortSignal): Promise<void> {
  const rows = await outdated(project, { cacheDir: inputs.cacheDir, env: inputs.env, signal });
  const stale = rows.filter((r) => r.status !== 'current');
  const short = (v: OutdatedEntry['locked']): string => (v ? `${v.resolved} (${v.manifest.slice(0, 8)})` : '-');
  const file = workspacePath(project.config.file, inputs.env);

  core.setOutput('outdated', JSON.stringify(stale));
  for (const r of stale) {
    const line = entryLine(project, r.name);
    core.warning(`${r.name}: ${r.model}@${r.requested} is ${r.status}: locked ${short(r.locked)}, registry has ${short(r.latest)}${r.detail ? ` — ${r.detail}` : ''}`, {
      title: `models outdated: ${r.name}`,
      file,
      ...(line ? { startLine: line } : {}),
    });
  }
  core.info(stale.length === 0 ? `all ${rows.length} models are current` : `${stale.length} of ${rows.length} models are not current`);
  await writeSummary((s) =>
    s
      .addHeading('Outdated models', 2)
      .addTable([header('Model', 'Requested', 'Locked', 'Latest', 'Status'), ...rows.map((r) => cells([`${r.name} (${r.model})`, r.requested, short(r.locked), short(r.latest), r.status]))])
      .addRaw(stale.length === 0 ? 'Every model is current.' : `${stale.length} model${stale.length === 1 ? '' : 's'} to update: run \`models lock --update\` and commit models.lock.`, true),
  );
  if (stale.length > 0 && inputs.failOnOutdated) {
    core.setFailed(`${stale.length} model${stale.length === 1 ? ' is' : 's are'} not current: ${stale.map((r) => `${r.name} (${r.status})`).join(', ')} (hint: run \`models lock --update\` and commit models.lock)`);
  }
}

// --- verify ------------------------------------------------------------------------------------

async function runVerify(inputs: ActionInputs, project: Project, signal: AbortSignal): Promise<void> {
  const report = await verify(project, {
    ...(inputs.only.length > 0 ? { names: inputs.only } : {}),
    ...(inputs.root ? { root: inputs.root } : {}),
    cacheDir: inputs.cacheDir,
    env: inputs.env,
    signal,
  });
  const file = workspacePath(project.config.file, inputs.env);
  const bad = report.models.filter((m) => m.status !== 'ok');
  core.setOutput('verified', JSON.stringify(report.models));
  core.setOutput('models-dir', report.root);
  for (const m of report.models) {
    const problems = m.files.filter((f) => f.status !== 'ok');
    core.startGroup(`${m.name}: ${m.model}@${m.resolved} ${m.status}`);
    core.info(`path: ${m.path}, ${m.files.length} file${m.files.length === 1 ? '' : 's'}`);
    for (const f of problems) core.info(`${f.status}: ${f.path}${f.detail ? ` (${f.detail})` : ''}`);
    core.endGroup();
    if (m.status !== 'ok') {
      const line = entryLine(project, m.name);
      const detail = problems.length > 0 ? `: ${problems.map((f) => `${f.path} ${f.status}`).join(', ')}` : m.detail ? `: ${m.detail}` : '';
      core.error(`${m.name}: ${m.status} in ${m.path}${detail}`, { title: `models verify: ${m.name}`, file, ...(line ? { startLine: line } : {}) });
    }
  }
  await writeSummary((s) =>
    s.addHeading('Models verified', 2).addTable([
      header('Model', 'Version', 'Status', 'Files', 'Problems'),
      ...report.models.map((m) =>
        cells([`${m.name} (${m.model})`, m.resolved, m.status, String(m.files.length), m.files.filter((f) => f.status !== 'ok').map((f) => `${f.path} (${f.status})`).join(', ') || '-']),
      ),
    ]),
  );
  if (!report.ok) {
    core.setFailed(`verify: ${bad.map((m) => `${m.name} (${m.status})`).join(', ')} (hint: run \`models install\` to put them back)`);
  }
}

// --- entry -------------------------------------------------------------------------------------

function reportFailure(error: unknown, env: NodeJS.ProcessEnv, command: string): void {
  if (!isModelsError(error)) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof Error && error.stack) core.debug(error.stack);
    core.setFailed(`models ${command}: unexpected error: ${message}`);
    return;
  }
  const text = error.toDisplayString();
  if (error.file) {
    // One annotation, at the place to fix: setFailed would add a second one without the location.
    core.error(text, {
      title: `models ${command}: ${error.code}`,
      file: workspacePath(error.file, env),
      ...(error.line ? { startLine: error.line } : {}),
      ...(error.column ? { startColumn: error.column } : {}),
    });
    process.exitCode = core.ExitCode.Failure;
  } else {
    core.setFailed(text);
  }
}

export async function run(): Promise<void> {
  const controller = new AbortController();
  // A cancelled run sends SIGINT: stop cleanly, keeping verified data for the next attempt.
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let command = core.getInput('command') || 'install';
  let env = process.env;
  try {
    const inputs = readInputs();
    command = inputs.command;
    env = inputs.env;
    const project = await loadProject(inputs.config);
    if (inputs.command === 'install') await runInstall(inputs, project, controller.signal);
    else if (inputs.command === 'outdated') await runOutdated(inputs, project, controller.signal);
    else await runVerify(inputs, project, controller.signal);
  } catch (error) {
    reportFailure(error, env, command);
    if (isModelsError(error)) {
      const text = error.toDisplayString();
      await writeSummary((s) => s.addHeading(`models ${command} failed`, 2).addRaw(html(text), true));
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

