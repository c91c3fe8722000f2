/**
 * A minimal OCI distribution client for tests, on plain fetch: pushes fixtures into the real
 * registry (test/support/oci-registry.ts) and reads them back. Deliberately independent of src/, so
 * the product's client is tested against fixtures it did not write.
 *
 * Uploads follow what distribution 2.8 really does (distribution-spec "Pushing blobs"):
 * `POST /v2/<name>/blobs/uploads/` -> 202 + Location; a `PATCH` per chunk with
 * `Content-Range: <start>-<end>` (no `bytes=` prefix, and the 202's `Range: 0-<end>` has none
 * either); each PATCH answers a NEW Location which the next request must use; then
 * `PUT <location>&digest=sha256:…` (the Location already has a query: `_state=…`). The registry
 * does not support the single-request `POST ?digest=` upload with a body (it ignores the body).
 * Auth: Basic, or the Bearer flow from the 401's WWW-Authenticate (tokens cached per scope).
 */
import { createHash } from 'node:crypto';

export interface Credentials {
  username: string;
  password: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: { os: string; architecture: string; variant?: string };
}

export const digestOf = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

export class OciTestClient {
  private readonly tokens = new Map<string, string>();
  /** Every request this client made: method, URL and the status it got. */
  readonly log: Array<{ method: string; url: string; status: number }> = [];

  constructor(readonly base: string, private readonly credentials?: Credentials) {}

  /** fetch with auth: Basic up front when there are credentials; on a Bearer challenge, a token. */
  async request(method: string, pathOrUrl: string, init: { headers?: Record<string, string>; body?: Buffer; scope?: string } = {}): Promise<Response> {
    const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${this.base}${pathOrUrl}`;
    const send = (auth?: string): Promise<Response> =>
      fetch(url, { method, headers: { ...init.headers, ...(auth ? { Authorization: auth } : {}) }, ...(init.body ? { body: init.body } : {}), redirect: 'manual' });
    const cached = init.scope ? this.tokens.get(init.scope) : undefined;
    let res = await send(cached ? `Bearer ${cached}` : this.basic());
    this.log.push({ method, url, status: res.status });
    const challenge = res.headers.get('www-authenticate') ?? '';
    if (res.status === 401 && /^Bearer /i.test(challenge)) {
      await res.arrayBuffer();
      const params = parseChallenge(challenge);
      const token = await this.fetchToken(params);
      if (init.scope) this.tokens.set(init.scope, token);
      res = await send(`Bearer ${token}`);
      this.log.push({ method, url, status: res.status });
    }
    return res;
  }

  private basic(): string | undefined {
    if (!this.credentials) return undefined;
    return `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
  }

  private async fetchToken(params: Record<string, string>): Promise<string> {
    const realm = new URL(params.realm ?? '');
    if (params.service) realm.searchParams.set('service', params.service);
    for (const s of (params.scope ?? '').split(' ').filter(Boolean)) realm.searchParams.append('scope', s);
    const basic = this.basic();
    const res = await fetch(realm, basic ? { headers: { Authorization: basic } } : {});
    if (!res.ok) throw new Error(`token request to ${realm.origin} failed: ${res.status}`);
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new Error('token response without a token');
    return token;
  }

  async hasBlob(repo: string, digest: string): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, { scope: `repository:${repo}:pull` });
    return res.status === 200;
  }

  /** Upload a blob in chunks (default 1 MiB); returns its digest. Skips one the registry has. */
  async pushBlob(repo: string, bytes: Buffer, chunkSize = 1 << 20): Promise<string> {
    const digest = digestOf(bytes);
    const scope = `repository:${repo}:pull,push`;
    if (await this.hasBlob(repo, digest)) return digest;
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/`, { scope });
    await expectStatus(start, 202, `start upload to ${repo}`);
    let location = absolute(this.base, start.headers.get('location'));
    for (let off = 0; off < bytes.length; off += chunkSize) {
      const chunk = bytes.subarray(off, Math.min(bytes.length, off + chunkSize));
      const res = await this.request('PATCH', location, {
        scope,
        body: chunk,
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${off}-${off + chunk.length - 1}`, 'Content-Length': String(chunk.length) },
      });
      await expectStatus(res, 202, `upload chunk at ${off}`);
      location = absolute(this.base, res.headers.get('location'));
    }
    const put = new URL(location);
    put.searchParams.set('digest', digest);
    const done = await this.request('PUT', put.toString(), { scope, headers: { 'Content-Length': '0' } });
    await expectStatus(done, 201, `finish upload of ${digest}`);
    return digest;
  }

  /** PUT a manifest; returns the digest the registry reports (Docker-Content-Digest). */
  async pushManifest(repo: string, reference: string, manifest: Buffer, mediaType: string): Promise<string> {
    const res = await this.request('PUT', `/v2/${repo}/manifests/${reference}`, { scope: `repository:${repo}:pull,push`, body: manifest, headers: { 'Content-Type': mediaType } });
    await expectStatus(res, 201, `push manifest ${repo}:${reference}`);
    return res.headers.get('docker-content-digest') ?? digestOf(manifest);
  }

  async getManifest(repo: string, reference: string, accept: string[]): Promise<Response> {
    return this.request('GET', `/v2/${repo}/manifests/${reference}`, { scope: `repository:${repo}:pull`, headers: { Accept: accept.join(', ') } });
  }

  async getBlob(repo: string, digest: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.request('GET', `/v2/${repo}/blobs/${digest}`, { scope: `repository:${repo}:pull`, headers });
  }
}

/** `Bearer realm="…",service="…",scope="…"` -> its parameters. */
export function parseChallenge(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of header.replace(/^\w+\s+/, '').matchAll(/(\w+)="([^"]*)"/g)) out[m[1] ?? ''] = m[2] ?? '';
  return out;
}

function absolute(base: string, location: string | null): string {
  if (!location) throw new Error('upload answer without a Location');
  return new URL(location, base).toString();
}

async function expectStatus(res: Response, status: number, what: string): Promise<void> {
  if (res.status === status) {
    await res.arrayBuffer();
    return;
  }
  throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
}
