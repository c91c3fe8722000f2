/** What a server says about a URL now (HEAD, following redirects, never with MODELS_TOKEN), retried like any request. */
import type { SourceContext } from '../adapter.js';
import { header } from '../../registry/source.js';
import { urlClient } from './client.js';

export interface HeadAnswer {
  size?: number;
  etag?: string;
  lastModified?: string;
}

/** undefined when the server answers 404. */
export async function headOf(ctx: SourceContext, url: string, name: string): Promise<HeadAnswer | undefined> {
  const answer = await urlClient(ctx.session, url, undefined).request(`${name}: HEAD ${url}`, async () => {
    const response = await ctx.session.http.request(url, { method: 'HEAD', anonymous: true, ...(ctx.signal ? { signal: ctx.signal } : {}) });
    for await (const _ of response.body) {
      // a HEAD has no body; drained so the connection is reused
    }
    if (response.status === 404) return { missing: true } as const;
    const length = header(response.headers['content-length']);
    const etag = header(response.headers.etag);
    const lastModified = header(response.headers['last-modified']);
    return {
      ...(length && /^\d+$/.test(length) ? { size: Number(length) } : {}),
      ...(etag && !etag.startsWith('W/') ? { etag } : {}),
      ...(lastModified ? { lastModified } : {}),
    };
  }, ctx.signal);
  return 'missing' in answer ? undefined : answer;
}
