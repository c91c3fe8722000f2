/** Loopback hosts: where plain http is allowed (tests, local mirrors), as Docker allows it for registries. */
const LOOPBACK = /^(127(\.\d{1,3}){3}|localhost|\[::1\]|::1)$/i;

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK.test(hostname);
}
