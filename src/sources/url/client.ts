/** Where a `url:` model's bytes come from: its one URL, as `data/<sha256>`, never with MODELS_TOKEN. */
import type { Session } from '../../project/session.js';
import type { RegistryClient } from '../../registry/client.js';
import { UrlTableSource } from '../../registry/source.js';
import { redact } from '../../net/http.js';

/** The relative path the fetch engine asks for; before the hash is known, a fixed name. */
export function objectPath(sha256: string | undefined): string {
  return `data/${sha256 ?? 'unpinned'}`;
}

export function urlClient(session: Session, url: string, sha256: string | undefined): RegistryClient {
  const source = new UrlTableSource(redact(new URL(url)), new Map([[objectPath(sha256), url]]), session.http);
  return session.clientOver([source]);
}
