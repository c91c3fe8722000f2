/**
 * The Hub's refusals as exit codes, keyed on `X-Error-Code` before the status (huggingface_hub's
 * hf_raise_for_status does the same): GatedRepo and refused credentials are authentication (9);
 * RevisionNotFound, EntryNotFound and a RepoNotFound the Hub says to a token are "not found" (3).
 * Without a token the Hub answers 401 RepoNotFound for a missing and for a private repo alike:
 * that is exit 9, with a hint that covers both.
 */
import { ModelsError } from '../../util/errors.js';
import { header } from '../../registry/source.js';
import { type RepoRef, repoLabel } from './repo.js';
import type { HubSettings } from './settings.js';

export interface HubAsk {
  ref: RepoRef;
  /** The revision asked for (API calls). */
  revision?: string;
  /** The file asked for (resolve). */
  path?: string;
  url: string;
}

type Headers = Record<string, string | string[] | undefined>;

/** The server's own words, made safe for a one-line message. */
function serverMessage(headers: Headers): string | undefined {
  // eslint-disable-next-line no-control-regex
  const text = header(headers['x-error-message'])?.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return text ? (text.length > 200 ? `${text.slice(0, 200)}…` : text) : undefined;
}

export function tokenHint(settings: HubSettings, ref: RepoRef): string {
  const page = `${settings.endpoint}/${ref.type === 'model' ? '' : `${ref.type}s/`}${ref.repo}`;
  return settings.token
    ? `the token from ${settings.tokenFrom ?? 'HF_TOKEN'} cannot read ${repoLabel(ref)}: use one that can (for a gated repo, accept its terms at ${page} with that account first), in HF_TOKEN`
    : `set HF_TOKEN to a token that can read ${repoLabel(ref)} (or run \`hf auth login\`); for a gated repo, accept its terms at ${page} first`;
}

export function hubError(status: number, headers: Headers, ask: HubAsk, settings: HubSettings): ModelsError {
  const label = repoLabel(ask.ref);
  const code = header(headers['x-error-code']);
  const said = serverMessage(headers);
  const where = `${ask.url} (HTTP ${status}${code ? ` ${code}` : ''})`;
  switch (code) {
    case 'GatedRepo':
      return new ModelsError('E_AUTH', `${label} is a gated repo and ${settings.token ? 'this token has not been granted access' : 'no token was sent'}: ${where}`, { hint: tokenHint(settings, ask.ref) });
    case 'RepoNotFound':
      if (!settings.token) {
        return new ModelsError('E_AUTH', `${label}: repository not found, or private (without a token the Hub does not say which): ${where}`, {
          hint: 'check the name (a dataset is hf: datasets/<org>/<repo>); for a private repo, set HF_TOKEN to a token that can read it (or run `hf auth login`)',
        });
      }
      return new ModelsError('E_NOT_FOUND', `${label}: repository not found, or the token from ${settings.tokenFrom ?? 'HF_TOKEN'} cannot read it: ${where}`, {
        hint: 'check the name in models.yaml (a dataset is hf: datasets/<org>/<repo>) and that the token\'s account can see the repo',
      });
    case 'RevisionNotFound':
      return new ModelsError('E_NOT_FOUND', `${label}: revision ${JSON.stringify(ask.revision ?? '')} not found: ${where}`, {
        hint: 'check revision: in models.yaml: a branch, a tag, a 40-hex commit or a ref such as refs/pr/1',
      });
    case 'EntryNotFound':
      return new ModelsError('E_NOT_FOUND', `${label}: ${ask.path ? `file ${JSON.stringify(ask.path)}` : 'path'} not found${ask.revision ? ` at ${ask.revision}` : ''}: ${where}`, {
        hint: 'the file is not in the repo at that commit: check files: in models.yaml, or run `models lock --update`',
      });
    default:
      break;
  }
  if (status === 401 || status === 403) {
    const refused = settings.token ? `the Hub refused the token from ${settings.tokenFrom ?? 'HF_TOKEN'}` : 'the Hub wants a token';
    return new ModelsError('E_AUTH', `${label}: ${refused}${said ? ` ("${said}")` : ''}: ${where}`, { hint: tokenHint(settings, ask.ref) });
  }
  if (status === 404) {
    return new ModelsError('E_NOT_FOUND', `${label}: not found: ${where}`, { hint: 'check the repo name and revision in models.yaml, and HF_ENDPOINT' });
  }
  return new ModelsError('E_HTTP', `${label}: the Hub refused the request${said ? ` ("${said}")` : ''}: ${where}`, { hint: 'check the repo name and revision in models.yaml, and HF_ENDPOINT' });
}
