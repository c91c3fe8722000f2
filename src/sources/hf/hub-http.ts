/**
 * One request to the Hub through our HTTP layer: the run's retries and backoff (429 with Retry-After
 * waits as told), proxies and timeouts, `--offline` refused, MODELS_TOKEN never sent, the Hub token
 * only to the HF_ENDPOINT origin (never after a redirect has left it), every refusal mapped by
 * errors.ts. Bodies are read whole, within a bound.
 */
import type { Session } from '../../project/session.js';
import type { RegistryClient } from '../../registry/client.js';
import { type SourceAuth, UrlTableSource, drain, header } from '../../registry/source.js';
import { type HttpResponse, TransientError } from '../../net/http.js';
import { ModelsError } from '../../util/errors.js';
import { type HubAsk, hubError, tokenHint } from './errors.js';
import type { RepoRef } from './repo.js';
import type { HubSettings } from './settings.js';

/** The Hub token as a source's own credentials: sent to the first origin only (HttpClient.request). */
export function hubAuth(settings: HubSettings, ref: RepoRef): SourceAuth {
  return {
    authorization: () => Promise.resolve(settings.token ? `Bearer ${settings.token}` : undefined),
    hint: tokenHint(settings, ref),
  };
}

/** A client whose one (remote) source stands for the Hub: retries, backoff and --offline for our own requests. */
export function hubClient(session: Session, settings: HubSettings, ref: RepoRef): RegistryClient {
  return session.clientOver([new UrlTableSource(settings.endpoint, new Map(), session.http, hubAuth(settings, ref))]);
}

export interface HubAnswer {
  body: Buffer;
  headers: HttpResponse['headers'];
  url: string;
}

/** GET `ask.url` and read the body whole (at most `maxBytes`), retried; a refusal is a ModelsError. */
export function hubGet(session: Session, settings: HubSettings, ask: HubAsk, what: string, maxBytes: number, signal?: AbortSignal): Promise<HubAnswer> {
  if (new URL(ask.url).origin !== settings.origin) {
    // A pagination link elsewhere: the token is for HF_ENDPOINT alone.
    throw new ModelsError('E_HTTP', `${what}: the Hub pointed to ${ask.url}, outside HF_ENDPOINT ${settings.endpoint}`, { hint: 'check HF_ENDPOINT: a mirror must serve its API on its own origin' });
  }
  return hubClient(session, settings, ask.ref).request(
    what,
    async () => {
      const response = await session.http.request(ask.url, {
        anonymous: true,
        passStatuses: [400, 401, 403, 410],
        ...(settings.token ? { authorization: `Bearer ${settings.token}` } : {}),
        ...(signal ? { signal } : {}),
      });
      if (response.status >= 400) {
        await drain(response.body);
        throw hubError(response.status, response.headers, ask, settings);
      }
      if (response.status !== 200) {
        await drain(response.body);
        throw new ModelsError('E_HTTP', `${what}: unexpected HTTP ${response.status} from ${response.url}`, { hint: 'check HF_ENDPOINT' });
      }
      return { body: await readBounded(response, maxBytes, what), headers: response.headers, url: response.url };
    },
    signal,
  );
}

async function readBounded(response: HttpResponse, maxBytes: number, what: string): Promise<Buffer> {
  const declared = Number(header(response.headers['content-length']));
  const tooBig = () =>
    new ModelsError('E_HTTP', `${what}: ${response.url} sends more than the ${maxBytes} bytes expected`, { hint: 'check HF_ENDPOINT: it does not answer like the Hub' });
  if (Number.isSafeInteger(declared) && declared > maxBytes) {
    response.body.destroy();
    throw tooBig();
  }
  const parts: Buffer[] = [];
  let total = 0;
  for await (const part of response.body) {
    total += part.byteLength;
    if (total > maxBytes) {
      response.body.destroy();
      throw tooBig();
    }
    parts.push(Buffer.from(part));
  }
  if (Number.isSafeInteger(declared) && total !== declared) throw new TransientError(`${what}: body ended after ${total} of ${declared} bytes`, response.url);
  return Buffer.concat(parts);
}

/** Parse a JSON answer of the API. */
export function parseJson(answer: HubAnswer, what: string): unknown {
  try {
    return JSON.parse(answer.body.toString('utf8')) as unknown;
  } catch {
    throw new ModelsError('E_HTTP', `${what}: ${answer.url} did not answer JSON`, { hint: 'check HF_ENDPOINT: it does not answer like the Hub API' });
  }
}

/** The `rel="next"` URL of a Link header (the tree API's pagination), absolute. */
export function nextLink(headers: HttpResponse['headers'], base: string): string | undefined {
  const value = headers.link;
  const text = Array.isArray(value) ? value.join(', ') : value;
  if (!text) return undefined;
  for (const part of text.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (match && /;\s*rel\s*=\s*"?next"?\s*(;|$)/i.test(match[2] ?? '')) return new URL(match[1] ?? '', base).href;
  }
  return undefined;
}
