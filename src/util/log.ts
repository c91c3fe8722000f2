/**
 * The --verbose debug log, on stderr: every request, retry, cache hit and lock wait. Off unless the
 * CLI turns it on. Callers pass URLs through `logUrl` and never pass headers: no secret gets here.
 */
let sink: ((line: string) => void) | undefined;

export function setDebugLog(write: ((line: string) => void) | undefined): void {
  sink = write;
}

export function debugLog(line: string): void {
  sink?.(line);
}

export function debugEnabled(): boolean {
  return sink !== undefined;
}

/** A URL fit for a log: no user or password, no query (presigned URLs carry their signature there). */
export function logUrl(url: string | URL, base?: URL): string {
  let copy: URL;
  try {
    copy = new URL(url, base);
  } catch {
    return '(an invalid URL)';
  }
  copy.username = '';
  copy.password = '';
  const query = copy.search ? '?…' : '';
  copy.search = '';
  copy.hash = '';
  return `${copy.href}${query}`;
}
