/**
 * Registry auth as every OCI client does it: a request goes out without credentials; a 401's
 * `WWW-Authenticate` says which scheme. `Basic`: the config.json credentials. `Bearer realm=…,
 * service=…,scope=…`: a token from the realm (GET with Basic credentials, or anonymously; POST
 * with an identity token), cached per scope and renewed before it expires. Credentials go only to
 * the registry's host and its realm; one RegistryAuth per host and run, shared by every entry.
 */
import type { Session } from '../../project/session.js';
import type { SourceAuth } from '../../registry/source.js';
import { ModelsError } from '../../util/errors.js';
import { isLoopbackHost } from '../../util/urls.js';
import { debugLog } from '../../util/log.js';
import { type Credentials, credentialsFor, credentialsHint } from './credentials.js';
import { readSmall, withRetries } from './http.js';

interface Token {
  value: string;
  /** When to fetch another (a little before it expires). */
  renewAt: number;
  /** Fetched because the token before it was refused: if this one is refused too, another would be. */
  replacement: boolean;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export function parseChallenge(text: string | undefined): Challenge | undefined {
  const match = /^\s*(\w+)\s*(.*)$/.exec(text ?? '');
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (const m of (match[2] ?? '').matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) params[(m[1] ?? '').toLowerCase()] = m[2] ?? m[3] ?? '';
  return { scheme: (match[1] ?? '').toLowerCase(), params };
}

/**
 * Scopes (`repository:<name>:<actions>`, space-separated) merged: one entry per resource with the
 * union of its actions, in a stable order, so a token asked for is the same string every time.
 */
export function mergeScopes(...lists: string[]): string {
  const actions = new Map<string, Set<string>>();
  for (const item of lists.join(' ').split(' ').filter(Boolean)) {
    const at = item.lastIndexOf(':');
    const resource = at > 0 ? item.slice(0, at) : item;
    const set = actions.get(resource) ?? new Set<string>();
    for (const action of at > 0 ? item.slice(at + 1).split(',') : []) if (action) set.add(action);
    actions.set(resource, set);
  }
  return [...actions.entries()].map(([resource, set]) => (set.size > 0 ? `${resource}:${[...set].sort().join(',')}` : resource)).join(' ');
}

const perSession = new WeakMap<Session, Map<string, RegistryAuth>>();

/** The auth of `host` for this run (tokens and credentials shared by all its entries). */
export function authFor(session: Session, host: string): RegistryAuth {
  let hosts = perSession.get(session);
  if (!hosts) perSession.set(session, (hosts = new Map()));
  let auth = hosts.get(host);
  if (!auth) hosts.set(host, (auth = new RegistryAuth(session, host)));
  return auth;
}

export class RegistryAuth {
  private scheme: 'none' | 'basic' | 'bearer' = 'none';
  private credentials: Promise<Credentials | undefined> | undefined;
  private realm: { url: string; service?: string } | undefined;
  private readonly tokens = new Map<string, Token>();
  private readonly pending = new Map<string, Promise<Token>>();
  /** What each scope's token is asked for: ours merged with what the registry's challenges named. */
  private readonly scopes = new Map<string, string>();
  readonly hint: string;

  constructor(
    private readonly session: Session,
    readonly host: string,
  ) {
    this.hint = credentialsHint(host, session.env);
  }

  /** The SourceAuth of one scope, e.g. `repository:acme/tiny:pull`. */
  forScope(scope: string): SourceAuth {
    return { authorization: (signal) => this.header(scope, signal), refused: (challenge, sent) => this.refused(scope, challenge, sent), hint: this.hint };
  }

  private loadCredentials(): Promise<Credentials | undefined> {
    this.credentials ??= credentialsFor(this.host, this.session.env);
    return this.credentials;
  }

  private async header(scope: string, signal?: AbortSignal): Promise<string | undefined> {
    if (this.scheme === 'basic') {
      const creds = await this.loadCredentials();
      return creds?.kind === 'basic' ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined;
    }
    if (this.scheme !== 'bearer') return undefined;
    let token = this.tokens.get(scope);
    // Renewed before it expires, rather than waiting for the registry to refuse it.
    if ((!token || Date.now() >= token.renewAt) && this.realm) token = await this.fetchToken(scope, this.scopes.get(scope) ?? scope, signal);
    return token ? `Bearer ${token.value}` : undefined;
  }

  /**
   * A 401 to a request sent with `sent`: true when there is something new to try (credentials, a
   * fresh token, or one another request got meanwhile); false: refuse. A cached token refused as
   * invalid (revoked, expired early) is replaced once; a replacement refused, or a token refused
   * for `insufficient_scope` when it was asked for everything the challenge names, is final.
   */
  private async refused(scope: string, text: string | undefined, sent: string | undefined): Promise<boolean> {
    const challenge = parseChallenge(text);
    if (challenge?.scheme === 'basic') {
      if (sent?.startsWith('Basic ')) return false; // the credentials were sent and refused
      const creds = await this.loadCredentials();
      if (creds?.kind !== 'basic') return false;
      this.scheme = 'basic';
      return true;
    }
    if (challenge?.scheme !== 'bearer' || !challenge.params.realm) return false;
    this.scheme = 'bearer';
    this.realm = { url: challenge.params.realm, ...(challenge.params.service ? { service: challenge.params.service } : {}) };
    const asked = mergeScopes(this.scopes.get(scope) ?? scope);
    const wanted = mergeScopes(asked, challenge.params.scope ?? '');
    const current = this.tokens.get(scope);
    const wasSent = current !== undefined && sent === `Bearer ${current.value}`;
    // Another request renewed the token meanwhile: try that one.
    if (current && !wasSent && Date.now() < current.renewAt) return true;
    if (current && wasSent && (current.replacement || (challenge.params.error === 'insufficient_scope' && wanted === asked))) return false;
    this.tokens.delete(scope);
    this.scopes.set(scope, wanted);
    await this.fetchToken(scope, wanted, undefined, wasSent);
    return true;
  }

  private fetchToken(key: string, scope: string, signal?: AbortSignal, replacement = false): Promise<Token> {
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.requestToken(scope, signal).then(
        (value) => {
          const token = { ...value, replacement };
          this.tokens.set(key, token);
          this.pending.delete(key);
          return token;
        },
        (error: unknown) => {
          this.pending.delete(key);
          throw error;
        },
      );
      this.pending.set(key, pending);
    }
    return pending;
  }

  private async requestToken(scope: string, signal?: AbortSignal): Promise<Omit<Token, 'replacement'>> {
    const realm = this.realm as { url: string; service?: string };
    let url: URL;
    try {
      url = new URL(realm.url);
    } catch {
      throw new ModelsError('E_AUTH', `${this.host} names a token realm that is not a URL`, { hint: 'the registry is misconfigured: tell its owner' });
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
      throw new ModelsError('E_AUTH', `${this.host} sends its token requests to ${url.origin}: refusing a realm that is not https`, { hint: 'the registry is misconfigured: tell its owner' });
    }
    const creds = await this.loadCredentials();
    const what = `token for ${scope} from ${url.origin}${url.pathname}`;
    const body = await withRetries(this.session, what, url.origin, async () => {
      const response = creds?.kind === 'identity' ? await this.postIdentity(url, realm.service, scope, creds.token, signal) : await this.getToken(url, realm.service, scope, creds, signal);
      return readSmall(response, 1 << 20, what);
    }, signal);
    let data: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      data = JSON.parse(body.toString('utf8')) as typeof data;
    } catch {
      throw new ModelsError('E_AUTH', `${what}: the answer is not JSON`, { hint: 'the registry\'s token service is misconfigured: tell its owner' });
    }
    const value = typeof data.token === 'string' && data.token !== '' ? data.token : typeof data.access_token === 'string' ? data.access_token : '';
    if (value === '') throw new ModelsError('E_AUTH', `${what}: the answer has no token`, { hint: this.hint });
    const seconds = typeof data.expires_in === 'number' && data.expires_in > 0 ? data.expires_in : 60;
    debugLog(`token for ${scope} from ${url.origin}: valid ${seconds} s`);
    return { value, renewAt: Date.now() + seconds * 1000 - Math.min(10_000, (seconds * 1000) / 4) };
  }

  private async getToken(url: URL, service: string | undefined, scope: string, creds: Credentials | undefined, signal?: AbortSignal) {
    const target = new URL(url.href);
    if (service) target.searchParams.set('service', service);
    for (const s of scope.split(' ').filter(Boolean)) target.searchParams.append('scope', s);
    const authorization = creds?.kind === 'basic' ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined;
    return this.session.http.request(target.href, { anonymous: true, authHint: this.hint, ...(authorization ? { authorization } : {}), ...(signal ? { signal } : {}) });
  }

  /** distribution's docs/spec/auth/oauth.md: a refresh token (config.json `identitytoken`) is POSTed. */
  private async postIdentity(url: URL, service: string | undefined, scope: string, token: string, signal?: AbortSignal) {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: 'xprim-models', ...(service ? { service } : {}), scope });
    return this.session.http.request(url.href, {
      method: 'POST',
      body: form.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      anonymous: true,
      authHint: this.hint,
      ...(signal ? { signal } : {}),
    });
  }
}
