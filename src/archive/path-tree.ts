/**
 * The paths an archive has produced so far, as a tree of case-folded segments, to refuse
 * duplicates and a file and a folder of the same name. Case-folded like the manifest rules: two
 * paths that differ only in case collide on macOS and Windows. A tree rather than a set of every
 * parent prefix keeps memory proportional to the names' total length, however deep they nest.
 */
type Node = { kind: 'file' } | { kind: 'dir'; children: Map<string, Node> };

export class PathTree {
  private readonly root: Node & { kind: 'dir' } = { kind: 'dir', children: new Map() };

  /** Record a path; returns why it conflicts with an earlier one, or undefined. */
  add(path: string, kind: 'file' | 'dir'): string | undefined {
    const segments = path.toLowerCase().split('/');
    let node = this.root;
    for (let i = 0; i < segments.length - 1; i++) {
      const segment = segments[i] as string;
      const child = node.children.get(segment);
      if (child === undefined) {
        const dir: Node & { kind: 'dir' } = { kind: 'dir', children: new Map() };
        node.children.set(segment, dir);
        node = dir;
      } else if (child.kind === 'file') {
        return `needs "${segments.slice(0, i + 1).join('/')}" to be a folder, but an earlier entry is a file of that name`;
      } else {
        node = child;
      }
    }
    const last = segments[segments.length - 1] as string;
    const existing = node.children.get(last);
    if (existing === undefined) {
      node.children.set(last, kind === 'file' ? { kind: 'file' } : { kind: 'dir', children: new Map() });
      return undefined;
    }
    if (existing.kind === 'dir' && kind === 'dir') return undefined; // a folder listed twice is harmless
    if (existing.kind === 'file' && kind === 'file') return 'appears twice in the archive (names compared ignoring case)';
    return 'is both a file and a folder';
  }
}
