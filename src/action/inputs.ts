/** The Action's inputs (action.yml), read and checked once, and mapped onto the API's options. */
import { ModelsError, defaultCacheDir } from '../index.js';
import { join, resolve } from 'node:path';
import * as core from '@actions/core';

export type ActionCommand = 'install' | 'verify' | 'outdated';
const COMMANDS: readonly ActionCommand[] = ['install', 'verify', 'outdated'];

export interface ActionInputs {
  command: ActionCommand;
  /** Absolute. */
  workingDirectory: string;
  /** Absolute path of models.yaml. */
  config: string;
  /** Absolute, when given. */
  root: string | undefined;
  only: string[];
  concurrency: number | undefined;
  frozen: boolean;
  cache: boolean;
  /** Absolute. */
  cacheDir: string;
  failOnOutdated: boolean;
  /** The environment the API sees: the runner's, plus MODELS_TOKEN / MODELS_MIRRORS from inputs. */
  env: NodeJS.ProcessEnv;
}

/** Lists may be written space-, comma- or newline-separated (YAML block scalars included). */
export function splitList(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function inputError(name: string, message: string): ModelsError {
  return new ModelsError('E_USAGE', `input ${name}: ${message}`, { hint: `fix \`with: ${name}:\` in the workflow step` });
}

/** The runner fills in action.yml defaults; a bare `node dist/index.js` does not, hence our own. */
function booleanInput(name: string, fallback: boolean): boolean {
  if (core.getInput(name) === '') return fallback;
  try {
    return core.getBooleanInput(name);
  } catch {
    throw inputError(name, `expected true or false, got ${JSON.stringify(core.getInput(name))}`);
  }
}

export function readInputs(env: NodeJS.ProcessEnv = process.env): ActionInputs {
  const command = (core.getInput('command') || 'install') as ActionCommand;
  if (!COMMANDS.includes(command)) throw inputError('command', `expected install, verify or outdated, got ${JSON.stringify(command)}`);

  const workspace = env.GITHUB_WORKSPACE || process.cwd();
  const workingDirectory = resolve(workspace, core.getInput('working-directory') || '.');
  const config = resolve(workingDirectory, core.getInput('config') || 'models.yaml');
  const rootInput = core.getInput('root');

  const concurrencyInput = core.getInput('concurrency');
  let concurrency: number | undefined;
  if (concurrencyInput !== '') {
    concurrency = Number(concurrencyInput);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
      throw inputError('concurrency', `expected an integer from 1 to 256, got ${JSON.stringify(concurrencyInput)}`);
    }
  }

  const apiEnv: NodeJS.ProcessEnv = { ...env };
  const token = core.getInput('token');
  if (token !== '') {
    core.setSecret(token);
    apiEnv.MODELS_TOKEN = token;
  }
  const mirrors = splitList(core.getInput('mirrors'));
  if (mirrors.length > 0) apiEnv.MODELS_MIRRORS = mirrors.join(',');

  // RUNNER_TEMP is per job and on the runner's work disk: the natural home for a cache that
  // @actions/cache carries between runs. MODELS_CACHE_DIR set by the workflow still wins.
  const cacheDirInput = core.getInput('cache-dir');
  const cacheDir = cacheDirInput
    ? resolve(workingDirectory, cacheDirInput)
    : env.MODELS_CACHE_DIR
      ? resolve(workingDirectory, env.MODELS_CACHE_DIR)
      : env.RUNNER_TEMP
        ? join(env.RUNNER_TEMP, 'xprim-models-cache')
        : defaultCacheDir(env);

  return {
    command,
    workingDirectory,
    config,
    root: rootInput ? resolve(workingDirectory, rootInput) : undefined,
    only: splitList(core.getInput('only')),
    concurrency,
    frozen: booleanInput('frozen', true),
    cache: booleanInput('cache', true),
    cacheDir,
    failOnOutdated: booleanInput('fail-on-outdated', false),
    env: apiEnv,
  };
}
