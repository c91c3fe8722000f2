/**
 * Doctor's registry checks: each registry and mirror on its own (no failover, one attempt, a short
 * timeout), one models.json each, with its latency. Unreachable fails only when something still has
 * to be fetched from it; a mirror that does not answer is a warning. With an hf: entry, the
 * Hugging Face Hub too: one whoami (reachable, token valid).
 */
import type { Project } from '../../project/project.js';
import { Session } from '../../project/session.js';
import { envMirrors } from '../../project/settings.js';
import { fetchCatalog } from '../../registry/catalog.js';
import { RegistryClient } from '../../registry/client.js';
import { describeNetworkError } from '../../net/http.js';
import { isModelsError } from '../../util/errors.js';
import type { ModelStatus } from '../catalog-info.js';
import type { DoctorCheck } from '../doctor.js';
import { hubReadiness } from '../../sources/hf/readiness.js';

interface Probe {
  location: string;
  /** As sources show it (a folder as its path, a URL normalised). */
  subject: string;
  answer: { latencyMs: number; models: number } | { error: string };
}

export interface RegistryCheckOptions {
  cacheDir: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

export async function checkRegistries(project: Project, statuses: ModelStatus[], options: RegistryCheckOptions): Promise<DoctorCheck[]> {
  const { config } = project;
  const session = new Session(config, { cacheDir: options.cacheDir, env: options.env, retry: { attempts: 1 } });
  try {
    const mirrors = new Set([...envMirrors(options.env, config.dir), ...config.mirrors]);
    const locations = [...new Set([...envMirrors(options.env, config.dir), ...config.models.filter((m) => m.kind === 'xprim').map((m) => m.registryUrl), ...config.mirrors])];
    const probes = await Promise.all(locations.map((location) => probe(session, location, options)));
    const hub = await hubCheck(session, project, statuses, options);
    const checks = probes.map((p): DoctorCheck => {
      const kind = config.models.some((m) => m.registryUrl === p.location) || !mirrors.has(p.location) ? 'registry' : 'mirror';
      if (!('error' in p.answer)) {
        const { latencyMs, models } = p.answer;
        return { area: 'registry', subject: p.subject, status: 'ok', message: `${kind} reachable in ${latencyMs} ms, ${models} model${models === 1 ? '' : 's'}`, latencyMs };
      }
      // Unreachable matters when something still has to be fetched from it.
      const users = statuses.filter((m) => config.models.find((e) => e.name === m.name)?.registryUrl === p.location);
      const needsIt = kind === 'registry' && users.some((m) => m.status !== 'installed' && m.status !== 'other-platform');
      return {
        area: 'registry',
        subject: p.subject,
        status: needsIt ? 'fail' : 'warn',
        message: `${kind} unreachable: ${p.answer.error}`,
        hint: /^https?:/.test(p.location)
          ? 'check the network, the URL and proxy settings (HTTPS_PROXY), or set MODELS_MIRRORS to a reachable mirror'
          : 'check that the folder exists and holds models.json',
      };
    });
    return hub ? [...checks, hub] : checks;
  } finally {
    await session.close();
  }
}

/** The Hugging Face Hub, when an entry is hf: (reachable, token valid); unreachable fails only when an hf: model is still to be fetched. */
async function hubCheck(session: Session, project: Project, statuses: ModelStatus[], options: RegistryCheckOptions): Promise<DoctorCheck | undefined> {
  const names = new Set(project.config.models.filter((m) => m.kind === 'hf').map((m) => m.name));
  if (names.size === 0) return undefined;
  const needed = statuses.some((m) => names.has(m.name) && m.status !== 'installed' && m.status !== 'other-platform');
  return { area: 'registry', ...(await hubReadiness(session, needed, options.timeoutMs, options.signal)) };
}

/** This location alone, tried once: doctor reports on each source rather than fail over to the next. */
async function probe(session: Session, location: string, options: RegistryCheckOptions): Promise<Probe> {
  const client = new RegistryClient([location], { http: session.http, retry: { attempts: 1 } });
  const subject = client.locations[0] as string;
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const started = performance.now();
  try {
    const { catalog } = await fetchCatalog(client, location, options.signal ? AbortSignal.any([options.signal, timeout]) : timeout);
    const models = Object.values(catalog).reduce((n, group) => n + Object.keys(group).length, 0);
    return { location, subject, answer: { latencyMs: Math.round(performance.now() - started), models } };
  } catch (error) {
    if (timeout.aborted) return { location, subject, answer: { error: `no answer within ${Math.round(options.timeoutMs / 1000)}s` } };
    return { location, subject, answer: { error: problemOf(error) } };
  }
}

/** The failure in a few words: the subject already names the registry, and there was one attempt by design. */
function problemOf(error: unknown): string {
  if (!isModelsError(error)) return describeNetworkError(error);
  if (error.code === 'E_NOT_FOUND') return 'models.json not found (404): not an XPRIM registry, or a wrong URL';
  // The client's "registry index of X: <cause> (gave up after 1 attempt in 0.0 s)": the cause is what to show.
  if (error.code === 'E_NETWORK' && error.cause !== undefined) return describeNetworkError(error.cause);
  return error.message;
}
