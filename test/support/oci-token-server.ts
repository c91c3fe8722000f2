/**
 * A Docker token server (distribution's docs/spec/auth/token.md and jwt.md) for a registry in
 * `auth: token` mode: `GET <realm>?service=…&scope=repository:<name>:<actions>` (scope may repeat),
 * with optional Basic credentials, answers `{ token, access_token, expires_in, issued_at }`.
 * The JWT is ES256, signed with a P-256 key the test generates; its header carries the signing
 * certificate in `x5c`, which distribution verifies against `rootcertbundle` (a self-signed
 * certificate made with `openssl req -x509`). Granted actions are the intersection of what was asked
 * and what the user (or anonymous) may do, so a token may carry fewer actions than asked, as
 * real token servers do.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Action = 'pull' | 'push' | 'delete' | '*';

export interface Grant {
  /** Repository name, or a prefix ending in `*` (`acme/*`), or `*` for all. */
  repository: string;
  actions: Action[];
}

export interface TokenServerOptions {
  service?: string;
  issuer?: string;
  /** user -> password and grants. */
  users?: Record<string, { password: string; grants: Grant[] }>;
  /** What a request without credentials may do (default nothing). */
  anonymous?: Grant[];
  /** Token lifetime in seconds (default 300). */
  expiresIn?: number;
}

export interface TokenRequest {
  method: string;
  path: string;
  service: string | null;
  scopes: string[];
  authorization?: string;
  /** The user the credentials named, when they were right. */
  user?: string;
  status: number;
  /** What the issued token allows. */
  granted?: Array<{ type: string; name: string; actions: string[] }>;
}

export interface TokenServer {
  url: string;
  /** The realm the registry puts in WWW-Authenticate. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate for the registry's `rootcertbundle`. */
  certFile: string;
  requests: TokenRequest[];
  /** Token lifetime in seconds from now on (starts as options.expiresIn). */
  expiresIn: number;
  /**
   * How many of the next tokens to issue already dead to the registry (their `exp` two minutes
   * past, beyond distribution's 60 s leeway) while `expires_in` claims the usual lifetime: a token
   * revoked or expired early, which the client only learns from the registry's 401.
   */
  expireNext: number;
  close(): Promise<void>;
}

export async function startTokenServer(options: TokenServerOptions = {}): Promise<TokenServer> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-token-'));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  execFileSync('openssl', ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=xprim-test-token-issuer', '-days', '2', '-out', certFile], { stdio: 'ignore' });
  const certDer = (await readFile(certFile, 'utf8')).replace(/-----[A-Z ]+-----|\s/g, '');
  const service = options.service ?? 'xprim-test-registry';
  const issuer = options.issuer ?? 'xprim-test-token-issuer';
  const requests: TokenRequest[] = [];
  const state = { expiresIn: options.expiresIn ?? 300, expireNext: 0 };

  const server = createServer((req, res) => {
    const record = handle(req, res);
    requests.push(record);
  });

  function handle(req: IncomingMessage, res: ServerResponse): TokenRequest {
    const u = new URL(req.url ?? '/', 'http://x');
    const record: TokenRequest = { method: req.method ?? 'GET', path: u.pathname, service: u.searchParams.get('service'), scopes: u.searchParams.getAll('scope'), status: 0 };
    if (req.headers.authorization !== undefined) record.authorization = req.headers.authorization;
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}): TokenRequest => {
      record.status = status;
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
      return record;
    };
    if (u.pathname !== '/token' || req.method !== 'GET') return reply(404, { errors: [{ code: 'NOT_FOUND' }] });
    if (record.service !== service) return reply(400, { errors: [{ code: 'INVALID_SERVICE', message: `unknown service ${record.service}` }] });
    let grants = options.anonymous ?? [];
    if (record.authorization !== undefined) {
      const user = checkBasic(record.authorization, options.users ?? {});
      if (!user) return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] }, { 'WWW-Authenticate': `Basic realm="${service}"` });
      record.user = user;
      grants = options.users?.[user]?.grants ?? [];
    }
    const access = record.scopes.flatMap((s) => grantScope(s, grants));
    record.granted = access;
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = state.expiresIn;
    const dead = state.expireNext > 0;
    if (dead) state.expireNext--;
    const token = jwt(privateKey, certDer, { iss: issuer, sub: record.user ?? '', aud: service, exp: dead ? now - 120 : now + expiresIn, nbf: dead ? now - 180 : now - 10, iat: now, jti: randomUUID(), access });
    return reply(200, { token, access_token: token, expires_in: expiresIn, issued_at: new Date(now * 1000).toISOString() });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(state, {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    certFile,
    requests,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await rm(dir, { recursive: true, force: true });
    },
  });
}

function checkBasic(authorization: string, users: NonNullable<TokenServerOptions['users']>): string | undefined {
  const m = /^Basic (.+)$/i.exec(authorization);
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString();
  const i = decoded.indexOf(':');
  const [user, password] = [decoded.slice(0, i), decoded.slice(i + 1)];
  return i > 0 && users[user]?.password === password ? user : undefined;
}

/** `repository:<name>:<a,b>` -> the granted subset (none for an unknown type or name). */
function grantScope(scope: string, grants: Grant[]): Array<{ type: string; name: string; actions: string[] }> {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return [];
  const [type, name, wanted] = [scope.slice(0, first), scope.slice(first + 1, last), scope.slice(last + 1).split(',')];
  if (type !== 'repository') return [];
  const allowed = new Set<string>();
  for (const g of grants) {
    const matches = g.repository === '*' || g.repository === name || (g.repository.endsWith('*') && name.startsWith(g.repository.slice(0, -1)));
    if (matches) for (const a of g.actions) allowed.add(a);
  }
  const actions = wanted.filter((a) => allowed.has(a) || allowed.has('*'));
  return actions.length > 0 ? [{ type, name, actions }] : [];
}

const b64url = (v: Buffer | string): string => Buffer.from(v).toString('base64url');

function jwt(key: KeyObject, certDer: string, claims: Record<string, unknown>): string {
  const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer] };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  // JOSE wants the raw r||s signature, not DER.
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(signature)}`;
}
