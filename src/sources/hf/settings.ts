/**
 * Where the Hub is and who we are to it, read from the environment as the hf CLI (huggingface_hub
 * constants.py) reads it: HF_ENDPOINT (default https://huggingface.co); the token from HF_TOKEN,
 * else HUGGING_FACE_HUB_TOKEN, else the stored token file (HF_TOKEN_PATH, default $HF_HOME/token);
 * the local cache HF_HUB_CACHE (else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub). HF_HOME defaults to
 * $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. Read once per run.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Session } from '../../project/session.js';
import { ModelsError } from '../../util/errors.js';
import { isLoopbackHost } from '../../util/urls.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubSettings {
  /** HF_ENDPOINT without a trailing slash (it may carry a path: a mirror under a prefix). */
  endpoint: string;
  /** The endpoint's origin: the only one the token is ever sent to. */
  origin: string;
  token?: string;
  /** Where the token came from, for messages (never the value). */
  tokenFrom?: string;
  /** The local Hugging Face cache whose blobs may be reused (read only). */
  hubCache: string;
}

const settingsBySession = new WeakMap<Session, Promise<HubSettings>>();

export function hubSettings(session: Session): Promise<HubSettings> {
  let pending = settingsBySession.get(session);
  if (!pending) {
    pending = readSettings(session.env);
    settingsBySession.set(session, pending);
  }
  return pending;
}

export async function readSettings(env: NodeJS.ProcessEnv): Promise<HubSettings> {
  const { endpoint, origin } = readEndpoint(env);
  const home = hfHome(env);
  const token = await readToken(env, home);
  const hubCache = expand(env.HF_HUB_CACHE?.trim() || env.HUGGINGFACE_HUB_CACHE?.trim() || join(home, 'hub'));
  return { endpoint, origin, hubCache, ...token };
}

function expand(path: string): string {
  return resolve(path.startsWith('~/') || path === '~' ? join(homedir(), path.slice(1)) : path);
}

function hfHome(env: NodeJS.ProcessEnv): string {
  const explicit = env.HF_HOME?.trim();
  if (explicit) return expand(explicit);
  return join(env.XDG_CACHE_HOME?.trim() || join(homedir(), '.cache'), 'huggingface');
}

function readEndpoint(env: NodeJS.ProcessEnv): { endpoint: string; origin: string } {
  const text = env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ModelsError('E_USAGE', `HF_ENDPOINT=${JSON.stringify(text)}: not a URL`, { hint: 'set HF_ENDPOINT to the Hub or a mirror, e.g. https://huggingface.co, or unset it' });
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new ModelsError('E_USAGE', `HF_ENDPOINT=${JSON.stringify(text)}: expected https:// (plain http only to 127.0.0.1, ::1 or localhost)`, { hint: 'the token travels to this address: use https' });
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new ModelsError('E_USAGE', 'HF_ENDPOINT must be a plain base URL, without credentials, query or fragment', { hint: 'put the token in HF_TOKEN instead' });
  }
  return { endpoint: url.href.replace(/\/+$/, ''), origin: url.origin };
}

async function readToken(env: NodeJS.ProcessEnv, home: string): Promise<{ token?: string; tokenFrom?: string }> {
  for (const name of ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN']) {
    const value = env[name]?.trim();
    if (value) return { token: checkToken(value, name), tokenFrom: name };
  }
  const file = expand(env.HF_TOKEN_PATH?.trim() || join(home, 'token'));
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return {};
    throw new ModelsError('E_STORAGE', `cannot read the Hugging Face token file ${file}: ${(error as Error).message}`, { hint: 'fix its permissions, or set HF_TOKEN' });
  }
  const value = text.trim();
  return value ? { token: checkToken(value, file), tokenFrom: file } : {};
}

/** One header-safe word; the message names where it came from, never the value. */
function checkToken(token: string, from: string): string {
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new ModelsError('E_USAGE', `the Hugging Face token in ${from} contains spaces, line breaks or control characters`, { hint: 'it must hold the token alone (hf_…), e.g. HF_TOKEN="$(cat token.txt)"' });
  }
  return token;
}
