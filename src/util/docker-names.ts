/**
 * Docker's reference normalisation (distribution/reference `ParseNormalizedNamed`), so that an
 * `oci:` entry names what `docker pull` / `oras pull` would: a first path part with a `.` or `:`,
 * or `localhost`, is a registry host; otherwise the host is Docker Hub (`docker.io`), and a
 * one-part name on Docker Hub is an official image under `library/`. `index.docker.io` is
 * `docker.io`. Tags and digests are kept as written.
 */

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API is served: `docker.io` itself only redirects to a web page. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

/** `NAME[:TAG][@DIGEST]` with the host and `library/` Docker would add. */
export function normalizeOciReference(text: string): string {
  const trimmed = text.trim();
  const at = trimmed.indexOf('@');
  const named = at >= 0 ? trimmed.slice(0, at) : trimmed;
  const pinned = at >= 0 ? trimmed.slice(at) : '';
  // A tag's colon comes after the last slash; a port's comes before it.
  const colon = named.lastIndexOf(':');
  const [name, tag] = colon > named.lastIndexOf('/') ? [named.slice(0, colon), named.slice(colon)] : [named, ''];
  const slash = name.indexOf('/');
  const first = slash > 0 ? name.slice(0, slash) : '';
  const hasHost = first !== '' && (/[.:]/.test(first) || first === 'localhost' || first.startsWith('['));
  const host = hasHost ? (first === 'index.docker.io' ? DOCKER_HUB : first) : DOCKER_HUB;
  let path = hasHost ? name.slice(slash + 1) : name;
  if (host === DOCKER_HUB && path !== '' && !path.includes('/')) path = `library/${path}`;
  return `${host}/${path}${tag}${pinned}`;
}
