/**
 * A Hub repository's addresses: the API (`/api/{models|datasets|spaces}/{repo}/…`), the file URLs
 * (`/{repo}/resolve/…`, `/datasets/{repo}/resolve/…`) and its folder in a local Hugging Face cache
 * (`{models|datasets|spaces}--{org}--{name}`, huggingface_hub's repo_folder_name).
 */
import { join } from 'node:path';
import { ModelsError } from '../../util/errors.js';
import type { HubSettings } from './settings.js';

export type RepoType = 'model' | 'dataset' | 'space';

export interface RepoRef {
  repo: string;
  type: RepoType;
}

/** `hf:org/repo`, `hf:datasets/org/repo`: how messages name a repo. */
export function repoLabel(ref: RepoRef): string {
  return `hf:${ref.type === 'model' ? '' : `${ref.type}s/`}${ref.repo}`;
}

function apiBase(settings: HubSettings, ref: RepoRef): string {
  return `${settings.endpoint}/api/${ref.type}s/${ref.repo}`;
}

/** The revision (branch, tag, `refs/pr/1`, commit) as one URL segment, as huggingface_hub quotes it. */
export function revisionUrl(settings: HubSettings, ref: RepoRef, revision: string): string {
  return `${apiBase(settings, ref)}/revision/${encodeURIComponent(revision)}`;
}

export function treeUrl(settings: HubSettings, ref: RepoRef, commit: string): string {
  return `${apiBase(settings, ref)}/tree/${commit}?recursive=true`;
}

/** Each path segment percent-encoded, the slashes kept (huggingface_hub's hf_hub_url). */
export function encodeRepoPath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

export function resolveUrl(settings: HubSettings, ref: RepoRef, commit: string, path: string): string {
  const prefix = ref.type === 'model' ? '' : `${ref.type}s/`;
  return `${settings.endpoint}/${prefix}${ref.repo}/resolve/${commit}/${encodeRepoPath(path)}`;
}

/** The repo's folder in the local Hugging Face cache. */
export function cacheFolder(settings: HubSettings, ref: RepoRef): string {
  return join(settings.hubCache, [`${ref.type}s`, ...ref.repo.split('/')].join('--'));
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** The lock pin's repo reference; a repo id that could leave a URL path or the cache folder is refused. */
export function refOfPin(pin: Record<string, string | number> | undefined): RepoRef & { commit: string; revision: string } {
  const repo = String(pin?.repo ?? '');
  if (!REPO_ID.test(repo) || repo.includes('..')) {
    throw new ModelsError('E_LOCKFILE', `models.lock: hf: repo ${JSON.stringify(repo)} is not <org>/<repo>`, { hint: 'models.lock is written by xprim-models: restore it from version control, or run `models lock --update`' });
  }
  return { repo, type: (pin?.type ?? 'model') as RepoType, commit: String(pin?.commit ?? ''), revision: String(pin?.revision ?? '') };
}
