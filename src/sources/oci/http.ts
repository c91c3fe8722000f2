/**
 * Requests to an OCI registry with its auth: the registry's own Authorization (Basic, or a Bearer
 * token for the request's scope), a 401 answered once by asking the auth for fresh credentials, and
 * 401/403 turned into exit 9 naming DOCKER_CONFIG. Each call is retried like every request of the
 * run (backoff, Retry-After, --offline).
 */
import type { Session } from '../../project/session.js';
import type { HttpResponse, RequestOptions } from '../../net/http.js';
import { statusError } from '../../net/http.js';
import { UrlTableSource, drain, header } from '../../registry/source.js';
import type { SourceAuth } from '../../registry/source.js';
import { ModelsError } from '../../util/errors.js';

/** Run `op` with the run's retries and --offline, as every other network step does. */
export async function withRetries<T>(session: Session, what: string, location: string, op: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const client = session.clientOver([new UrlTableSource(location, new Map(), session.http)]);
  // Boxed: an answer of undefined (a void step) must not read as "not found" to the retry loop.
  const { value } = await client.request(what, async () => ({ value: await op() }), signal);
  return value;
}

export interface RegistryRequest extends Omit<RequestOptions, 'authorization' | 'anonymous' | 'passStatuses'> {
  /** Statuses returned rather than thrown, beside 401 (handled here). */
  pass?: number[];
}

/** One authorised request: a 401 gets another try while the auth has fresh credentials to offer, then exit 9. */
export async function registryRequest(session: Session, auth: SourceAuth, url: string, options: RegistryRequest = {}): Promise<HttpResponse> {
  const { pass = [], ...rest } = options;
  let sent: string | undefined;
  const send = async (): Promise<HttpResponse> => {
    sent = await auth.authorization(options.signal);
    return session.http.request(url, { ...rest, anonymous: true, passStatuses: [401, 403, ...pass], authHint: auth.hint, ...(sent ? { authorization: sent } : {}) });
  };
  let response = await send();
  // At most two more tries: credentials or a first token, then one replacement of a token refused
  // as invalid. The auth says when there is nothing new to try, so this never loops.
  for (let retry = 0; retry < 2 && response.status === 401 && auth.refused && (await auth.refused(header(response.headers['www-authenticate']), sent)); retry++) {
    await drain(response.body);
    response = await send();
  }
  if ((response.status === 401 || response.status === 403) && !pass.includes(response.status)) {
    await drain(response.body);
    throw statusError(response.status, response.url, auth.hint);
  }
  return response;
}

/** The body of a small answer (a manifest, a token, an error), refusing more than `max` bytes. */
export async function readSmall(response: HttpResponse, max: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const part of response.body) {
    total += part.byteLength;
    if (total > max) {
      response.body.destroy();
      throw new ModelsError('E_MANIFEST', `${what}: ${response.url} sends more than ${max} bytes`, { hint: 'the registry serves something that is not an OCI manifest' });
    }
    parts.push(Buffer.from(part));
  }
  return Buffer.concat(parts);
}

/** The registry's own words for a refusal (`{"errors":[{"code","message"}]}`), when it sent them. */
export async function registryErrorText(response: HttpResponse): Promise<string> {
  try {
    const body = JSON.parse((await readSmall(response, 64 * 1024, 'error')).toString('utf8')) as { errors?: Array<{ code?: string; message?: string }> };
    const first = body.errors?.[0];
    return first ? `${first.code ?? ''}${first.message ? `: ${first.message}` : ''}` : '';
  } catch {
    return '';
  }
}
