/**
 * `models doctor` for hf: entries: is the Hub (HF_ENDPOINT) reachable, and is the token valid?
 * One request: `GET /api/whoami-v2` (huggingface_hub's whoami), with the token when there is one.
 */
import type { Session } from '../../project/session.js';
import { drain } from '../../registry/source.js';
import { describeNetworkError } from '../../net/http.js';
import { isModelsError } from '../../util/errors.js';
import { hubSettings } from './settings.js';

export interface HubReadiness {
  subject: string;
  status: 'ok' | 'warn' | 'fail';
  message: string;
  hint?: string;
  latencyMs?: number;
}

/** `needed`: an hf: model still has to be fetched, so an unreachable Hub is a failure rather than a warning. */
export async function hubReadiness(session: Session, needed: boolean, timeoutMs: number, signal?: AbortSignal): Promise<HubReadiness> {
  let settings;
  try {
    settings = await hubSettings(session);
  } catch (error) {
    return { subject: 'HF_ENDPOINT', status: 'fail', message: isModelsError(error) ? error.message : String(error), ...(isModelsError(error) && error.hint ? { hint: error.hint } : {}) };
  }
  const subject = settings.endpoint;
  const timeout = AbortSignal.timeout(timeoutMs);
  const started = performance.now();
  let status: number;
  try {
    const response = await session.http.request(`${settings.endpoint}/api/whoami-v2`, {
      anonymous: true,
      passStatuses: [401, 403],
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      ...(settings.token ? { authorization: `Bearer ${settings.token}` } : {}),
    });
    status = response.status;
    await drain(response.body);
  } catch (error) {
    const why = timeout.aborted ? `no answer within ${Math.round(timeoutMs / 1000)}s` : isModelsError(error) ? error.message : describeNetworkError(error);
    return { subject, status: needed ? 'fail' : 'warn', message: `Hugging Face Hub unreachable: ${why}`, hint: 'check the network and proxy settings (HTTPS_PROXY), or HF_ENDPOINT' };
  }
  const latencyMs = Math.round(performance.now() - started);
  const reachable = `Hugging Face Hub reachable in ${latencyMs} ms`;
  if (!settings.token) {
    return { subject, status: 'ok', message: `${reachable}; no token (HF_TOKEN unset, no stored token): public repos only`, latencyMs };
  }
  if (status === 200) return { subject, status: 'ok', message: `${reachable}; the token from ${settings.tokenFrom ?? 'HF_TOKEN'} is valid`, latencyMs };
  if (status === 401 || status === 403) {
    return { subject, status: 'fail', message: `${reachable}, but it refuses the token from ${settings.tokenFrom ?? 'HF_TOKEN'} (HTTP ${status})`, hint: 'set HF_TOKEN to a valid token (or run `hf auth login`)', latencyMs };
  }
  return { subject, status: 'warn', message: `${reachable}, but it answers HTTP ${status} for whoami: the token could not be checked`, latencyMs };
}
