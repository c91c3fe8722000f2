/**
 * Where an hf: model's bytes come from at install, from the lock alone (no API request): each file
 * at `<HF_ENDPOINT>/<prefix><repo>/resolve/<commit>/<path>`, the redirect to the file host followed
 * without the token; before that, the local Hugging Face cache (hashed first, read only).
 */
import type { LockedModel } from '../../project/lockfile.js';
import { type RegistrySource, type SourceAuth, UrlTableSource } from '../../registry/source.js';
import type { ContentContext, ModelContent } from '../adapter.js';
import { wholeFileLayout } from '../whole-files.js';
import { hubError } from './errors.js';
import { hubAuth } from './hub-http.js';
import { hubCacheSource, offlineStop } from './local-cache.js';
import { refOfPin, resolveUrl } from './repo.js';
import { hubSettings } from './settings.js';

export async function hubContent(ctx: ContentContext, locked: LockedModel): Promise<ModelContent> {
  const settings = await hubSettings(ctx.session);
  const ref = refOfPin(locked.pin);
  const urls = new Map<string, string>();
  const paths = new Map<string, string>();
  for (const f of locked.files) {
    if (!f.sha256 || f.size === 0 || urls.has(`data/${f.sha256}`)) continue;
    const url = resolveUrl(settings, ref, ref.commit, f.path);
    urls.set(`data/${f.sha256}`, url);
    paths.set(url, f.path);
  }
  // A refusal by the Hub itself says why (gated, private); one by the file host is a plain HTTP error.
  const auth: SourceAuth = {
    ...hubAuth(settings, ref),
    explain: (status, headers, url) => (new URL(url).origin === settings.origin ? hubError(status, headers, { ref, revision: ref.commit, url, ...(paths.has(url) ? { path: paths.get(url) as string } : {}) }, settings) : undefined),
  };
  const sources: RegistrySource[] = [];
  const local = await hubCacheSource(settings, ref, ref.commit, locked.files);
  if (local) sources.push(local);
  const prefix = ref.type === 'model' ? '' : `${ref.type}s/`;
  sources.push(new UrlTableSource(`${settings.endpoint}/${prefix}${ref.repo}/resolve/${ref.commit.slice(0, 12)}`, urls, ctx.session.http, auth));
  if (ctx.session.options.offline) sources.push(offlineStop(ref, locked.files));
  return { layout: wholeFileLayout(locked.files, locked.manifest), client: ctx.session.clientOver(sources) };
}
