/**
 * Two hashes shown short enough to read and long enough to tell apart: 12 characters, or up to a
 * few past the first one that differs (an edit in the last character must not print the same twice).
 */
export function contrastHashes(a: string | undefined, b: string | undefined): [string, string] {
  if (!a || !b) return [a ? shorten(a, 12) : 'none', b ? shorten(b, 12) : 'none'];
  let first = 0;
  while (first < a.length && a[first] === b[first]) first++;
  const length = Math.max(12, first + 4);
  return [shorten(a, length), shorten(b, length)];
}

function shorten(hash: string, length: number): string {
  return hash.length <= length ? hash : `${hash.slice(0, length)}…`;
}
