/**
 * The order of names in everything this tool writes for others to hash or diff (manifests,
 * models.json): by their UTF-8 bytes, which every language can reproduce. JavaScript's own `<`
 * compares UTF-16 code units, which differs from UTF-8 byte order above U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
