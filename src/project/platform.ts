/** `when:` and `--platform`: Node's process.platform / process.arch names, and the habits people bring. */
import { ModelsError } from '../util/errors.js';
import { suggest } from './config-problems.js';

export const OS_NAMES = ['aix', 'android', 'darwin', 'freebsd', 'haiku', 'linux', 'openbsd', 'netbsd', 'sunos', 'win32', 'cygwin'];
export const ARCH_NAMES = ['arm', 'arm64', 'ia32', 'loong64', 'mips', 'mipsel', 'ppc', 'ppc64', 'riscv64', 's390', 's390x', 'x64'];
// Names people write from habit, mapped to Node's.
export const PLATFORM_ALIASES: Record<string, string> = {
  macos: 'darwin',
  mac: 'darwin',
  osx: 'darwin',
  windows: 'win32',
  win: 'win32',
  win64: 'win32',
  amd64: 'x64',
  x86_64: 'x64',
  'x86-64': 'x64',
  aarch64: 'arm64',
  x86: 'ia32',
  i386: 'ia32',
  i686: 'ia32',
};

export function matchesPlatform(entry: { when?: { os?: string[]; arch?: string[] } }, platform: { os: string; arch: string }): boolean {
  const { when } = entry;
  if (!when) return true;
  if (when.os && !when.os.includes(platform.os)) return false;
  if (when.arch && !when.arch.includes(platform.arch)) return false;
  return true;
}

/** "<os>-<arch>" in Node's names, e.g. linux-x64, darwin-arm64, win32-x64. */
export function parsePlatform(text: string): { os: string; arch: string } {
  const value = text.trim();
  const dash = value.indexOf('-');
  const os = dash < 0 ? value : value.slice(0, dash);
  const arch = dash < 0 ? '' : value.slice(dash + 1);
  if (OS_NAMES.includes(os) && ARCH_NAMES.includes(arch)) return { os, arch };
  const fixOs = OS_NAMES.includes(os) ? os : suggest(os, OS_NAMES);
  const fixArch = ARCH_NAMES.includes(arch) ? arch : suggest(arch, ARCH_NAMES);
  const guess = fixOs && fixArch ? ` (did you mean "${fixOs}-${fixArch}"?)` : '';
  throw new ModelsError('E_USAGE', `--platform ${JSON.stringify(text)}: expected <os>-<arch> in Node's names${guess}`, {
    hint: `e.g. linux-x64, darwin-arm64, win32-x64; os is one of ${OS_NAMES.join(', ')}; arch is one of ${ARCH_NAMES.join(', ')}`,
  });
}

