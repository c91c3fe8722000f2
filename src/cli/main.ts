/**
 * The `models` command. Thin: parse flags, call the programmatic API, print. Heavy modules are
 * imported inside each action, so `models install` with nothing to do starts fast.
 */
import { Command, Help, InvalidArgumentError, Option } from 'commander';
import { setMaxListeners } from 'node:events';
import { ModelsError } from '../util/errors.js';
import { setDebugLog } from '../util/log.js';
import { MAX_CONCURRENCY, checkEnvironment } from '../project/settings.js';
import { VERSION } from '../util/version.js';
import { type GlobalOptions, reportError } from './output.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each command declares its own argument types; commander supplies them
export type Action = (globals: GlobalOptions, signal: AbortSignal, ...args: any[]) => Promise<number | void>;

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** --concurrency: checked when the flags are read, whether or not there turns out to be work. */
export function concurrency(value: string): number {
  const n = positiveInt(value);
  if (n > MAX_CONCURRENCY) throw new InvalidArgumentError(`expected an integer from 1 to ${MAX_CONCURRENCY}`);
  return n;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Run an action with the global options, Ctrl-C handling and the error taxonomy's exit codes. */
export function run(load: () => Promise<{ default: Action }>) {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const globals = command.optsWithGlobals() as GlobalOptions;
    if (globals.verbose) setDebugLog((line) => process.stderr.write(`debug: ${line}\n`));
    const controller = new AbortController();
  // Every in-flight request and backoff listens on it: many more than the default warning threshold.
  setMaxListeners(0, controller.signal);
    let interrupts = 0;
    const onSigint = () => {
      interrupts++;
      if (interrupts > 1) process.exit(130);
      process.stderr.write('\ninterrupted: stopping (progress is kept; run the command again to resume)\n');
      controller.abort();
      // Whatever is still in flight after a second is abandoned: the on-disk state is resumable by design.
      setTimeout(() => process.exit(130), 1000).unref();
    };
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigint);
    try {
      checkEnvironment(process.env);
      const { default: action } = await load();
      const code = await action(globals, controller.signal, ...args.slice(0, -1));
      process.exitCode = code ?? 0;
    } catch (error) {
      process.exitCode = controller.signal.aborted ? 130 : reportError(error, globals);
      if (controller.signal.aborted) process.stderr.write('interrupted\n');
    } finally {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigint);
    }
  };
}

/** The command table, in help order: the install spine, editing the project, publishing, inspection, the cache, upkeep. */
export function buildProgram(): Command {
  const program = rootCommand();
  registerLockInstallCommands(program);
  registerEditCommands(program);
  registerPublishCommand(program);
  registerInspectCommands(program);
  registerCacheCommands(program);
  registerUpkeepCommands(program);
  registerHelpCommand(program);
  return program;
}

/** `models` itself: the global options, help that lists -V, and exit codes for commander's own errors. */
function rootCommand(): Command {
  return new Command('models')
    .description('Reproducible, verified installs of ML model files from XPRIM registries (models --version prints the version)')
    .option('--json', 'print one JSON document on stdout, no progress')
    .option('-q, --quiet', 'print nothing on success')
    .option('-v, --verbose', 'debug log on stderr')
    .option('--config <path>', 'path to models.yaml', 'models.yaml')
    .option('--cache-dir <dir>', 'the shared cache (default $MODELS_CACHE_DIR, else ~/.cache/xprim-models)')
    .showHelpAfterError('(run `models help <command>` for usage)')
    // -V/--version is read by main() (publish has its own --version V); listed here so that help shows it.
    .configureHelp({
      showGlobalOptions: true,
      visibleOptions(this: Help, cmd: Command) {
        const options = Help.prototype.visibleOptions.call(this, cmd);
        return cmd.parent ? options : [new Option('-V, --version', 'print the version'), ...options];
      },
    })
    .configureOutput({ outputError: (text, write) => write(text) })
    .exitOverride((error) => {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') process.exit(0);
      process.exit(2);
    });
}

/** lock and install: the spine. */
function registerLockInstallCommands(program: Command): void {
  program
    .command('lock')
    .description('resolve models.yaml into models.lock (downloads no chunks)')
    .option('--update [names...]', 're-resolve all entries, or the named ones (picks up moved aliases)')
    .option('--platform <os-arch>', 'narrow multi-platform OCI indexes for this platform instead of this machine, e.g. linux-arm64')
    .addHelpText('after', '\nExamples:\n  models lock\n  models lock --update          # every alias to its newest target\n  models lock --update vad      # just one\n  models lock --platform linux-arm64')
    .action(run(() => import('./commands/lock.js')));

  program
    .command('install')
    .description('fetch, verify and place the locked models (locks first unless --frozen)')
    .option('--frozen', 'never write models.lock, never read models.json; exit 8 if the lock is missing or stale')
    .option('--only <names...>', 'only these models or tags')
    .option('--platform <os-arch>', 'select `when:` entries (and narrow OCI indexes when locking) for another platform, e.g. darwin-arm64')
    .option('--root <dir>', 'install here instead of the configured root (installer staging)')
    .option('--concurrency <n>', 'parallel chunk downloads (default $MODELS_CONCURRENCY or 8)', concurrency)
    .option('--no-cache', 'keep nothing in the shared cache after a successful install')
    .option('--verify', 're-hash installed files instead of trusting recorded size and mtime')
    .option('--offline', 'make no network request: only the cache and folder registries serve')
    .option('--limit-rate <bytes>', 'cap the total download bandwidth, bytes per second (e.g. 10MiB)')
    .addOption(new Option('--link <mode>', 'how files are placed from the cache').choices(['auto', 'hardlink', 'reflink', 'copy']))
    .option('--force', 'move a model folder the tool did not write aside (<dest>.xprim-replaced-<time>) instead of refusing')
    .addHelpText('after', '\nExamples:\n  models install --frozen                       # CI\n  models install --frozen --root dist/models --platform win32-x64\n  models install --only vision --concurrency 16')
    .action(run(() => import('./commands/install.js')));
}

/** add, remove, update, outdated: changing what models.yaml and models.lock hold. */
function registerEditCommands(program: Command): void {
  program
    .command('add <source>')
    .description('add an entry to models.yaml (comments and layout kept), lock it and install it')
    .option('--name <name>', 'the model name (default: from the source)')
    .option('--files <globs...>', 'hf:, oci: only these files')
    .option('--revision <rev>', 'hf: a branch, tag or commit (default main)')
    .option('--path <path>', 'install folder relative to the root (default: the name)')
    .option('--registry <url>', 'GROUP/MODEL: this registry instead of the top-level one')
    .option('--no-extract', 'an archive URL: install the archive file itself')
    .option('--no-install', 'edit models.yaml and lock, but do not install')
    .addHelpText('after', '\nExamples:\n  models add https://github.com/snakers4/silero-vad/raw/v5.1/src/silero_vad/data/silero_vad.onnx --name vad\n  models add https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip\n  models add hf:openai/whisper-tiny --files "*.json" "onnx/*.onnx"\n  models add oci:ghcr.io/acme/tiny-model:v1\n  models add silero/vad@latest')
    .action(run(() => import('./commands/add.js')));

  program
    .command('remove <names...>')
    .description('remove entries from models.yaml and models.lock, and their installed folders')
    .option('--root <dir>', 'the install root to remove them from (default: the configured root)')
    .addHelpText('after', '\nExamples:\n  models remove vad\n  models remove vad whisper')
    .action(run(() => import('./commands/remove.js')));

  program
    .command('update [names...]')
    .description('`lock --update` then install; prints old → new')
    .option('--concurrency <n>', 'parallel chunk downloads', concurrency)
    .addHelpText('after', '\nExamples:\n  models update\n  models update vad')
    .action(run(() => import('./commands/update.js')));

  program
    .command('outdated')
    .description('compare locked versions with what the registry resolves now (exit 1 when anything is not current)')
    .addHelpText('after', '\nExamples:\n  models outdated\n  models outdated --json')
    .action(run(() => import('./commands/outdated.js')));
}

function registerPublishCommand(program: Command): void {
  program
    .command('publish <dir>')
    .description('chunk a folder of files into a registry folder, or push it to an OCI registry (--to oci://HOST/REPO:TAG)')
    .requiredOption('--to <registry-dir>', 'the registry folder to write, or oci://HOST/REPO:TAG')
    .option('--model <group/model>', 'the model name (required for a registry folder)')
    .option('--version <version>', 'the version name, immutable (required for a registry folder)')
    .option('--alias <alias>', 'an alias pointing at this version (repeatable)', collect)
    .option('--chunking <kind>', 'cdc (content-defined: new versions share unchanged chunks) or fixed')
    .option('--chunk-size <size>', 'fixed chunk size, e.g. 16MiB (default; implies --chunking fixed)')
    .option('--metadata <key=value>', 'metadata (repeatable)', collect)
    .option('--mount-from <repo>', 'oci:// only: mount blobs from this repository of the same registry instead of uploading them')
    .addHelpText('after', '\nExamples:\n  models publish ./out --to ./registry --model acme/vad --version v5 --alias latest\n  models publish ./out --to oci://ghcr.io/acme/vad:v5\n  models publish ./out --to oci://ghcr.io/acme/vad-int8:v5 --mount-from acme/vad')
    .action(run(() => import('./commands/publish.js')));
}

/** verify, list, info, path: reading what is locked, installed or published. */
function registerInspectCommands(program: Command): void {
  program
    .command('verify [names...]')
    .description('re-hash every installed file against the locked manifest (exit 4 if missing, 6 if different)')
    .option('--root <dir>', 'the install root to check (default: the configured root)')
    .option('--concurrency <n>', 'files hashed at once (default 4)', concurrency)
    .option('--offline', 'never fetch a manifest (only needed for files whose sha256 is unknown)')
    .addHelpText('after', '\nExamples:\n  models verify\n  models verify vad --json')
    .action(run(() => import('./commands/verify.js')));

  program
    .command('list')
    .description('locked models and their install status')
    .option('--remote', "list the registry's catalog instead")
    .option('--registry <url>', 'with --remote: this registry instead of the configured ones')
    .option('--root <dir>', 'the install root to check')
    .addHelpText('after', '\nExamples:\n  models list\n  models list --remote --json')
    .action(run(() => import('./commands/list.js')));

  program
    .command('info <name> [version]')
    .description('files, sizes, chunks and metadata of a locked model (NAME) or a registry model (GROUP/MODEL)')
    .option('--remote', 'read the registry even for a locked NAME')
    .option('--registry <url>', 'for GROUP/MODEL: this registry instead of the configured ones')
    .option('--root <dir>', 'the install root (for the install status)')
    .addHelpText('after', '\nExamples:\n  models info vad\n  models info demo/silero-vad latest --remote')
    .action(run(() => import('./commands/info.js')));

  program
    .command('path <name>')
    .description('print the absolute install folder of a model (exit 4 when not installed)')
    .option('--root <dir>', 'the install root')
    .addHelpText('after', '\nExamples:\n  models path vad\n  python run.py --model "$(models path vad)/silero_vad.onnx"')
    .action(run(() => import('./commands/path.js')));
}

function registerCacheCommands(program: Command): void {
  const cache = program.command('cache').description('the shared chunk cache');
  cache
    .command('info')
    .description('location, size, file and chunk counts')
    .action(run(() => import('./commands/cache-info.js')));
  cache
    .command('verify')
    .description('re-hash every stored file and chunk; remove the corrupt ones')
    .action(run(() => import('./commands/cache-verify.js')));
  cache
    .command('prune')
    .description('remove cached data, least recently used first (everything when neither --older-than nor --max-size is given)')
    .option('--older-than <duration>', 'only what was last used longer ago than this (e.g. 30d, 12h)')
    .option('--max-size <size>', 'evict least recently used until the cache is at most this big (e.g. 10GiB)')
    .option('--dry-run', 'say what would be removed, remove nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText('after', '\nExamples:\n  models cache prune --older-than 30d --dry-run\n  models cache prune --max-size 20GiB -y')
    .action(run(() => import('./commands/cache-prune.js')));
}

/** doctor and mirror. */
function registerUpkeepCommands(program: Command): void {
  program
    .command('doctor')
    .description('a readiness report: config, lock, cache, disk, registries, each model; a hint per problem')
    .option('--root <dir>', 'the install root to check')
    .addHelpText('after', '\nExamples:\n  models doctor\n  models doctor --json')
    .action(run(() => import('./commands/doctor.js')));

  program
    .command('mirror [names...]')
    .description('write a registry folder holding exactly the locked models (air-gapped mirror, CDN seed); incremental')
    .requiredOption('--out <dir>', 'the registry folder to write')
    .option('--offline', 'make no network request: only the cache and folder registries serve')
    .option('--concurrency <n>', 'parallel chunk copies (default $MODELS_CONCURRENCY or 8)', concurrency)
    .addHelpText('after', '\nExamples:\n  models mirror --out /media/usb/models-mirror\n  MODELS_MIRRORS=file:///media/usb/models-mirror models install --frozen --offline')
    .action(run(() => import('./commands/mirror.js')));
}

/** `help [command...]` walks subcommands (`models help cache prune`); commander's own help command is off. */
function registerHelpCommand(program: Command): void {
  program
    .command('help [command...]')
    .description('show help for a command (`models help cache prune`)')
    .action((names: string[]) => {
      let target = program;
      for (const name of names) {
        const sub = target.commands.find((c) => c.name() === name);
        if (!sub) {
          process.stderr.write(`error: unknown command "${names.join(' ')}"\n(run \`models help\` for the list of commands)\n`);
          process.exitCode = 2;
          return;
        }
        target = sub;
      }
      target.outputHelp();
    });
  program.addHelpCommand(false);
}

/**
 * A reader that closes the pipe early (`models info x | head -1`) ends the output, not the
 * command: later writes are dropped instead of raising EPIPE, for every command in one place.
 */
export function endOutputQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
    stream.write = (() => true) as typeof stream.write;
  });
}

export async function main(argv = process.argv): Promise<void> {
  endOutputQuietlyOnClosedPipe(process.stdout);
  endOutputQuietlyOnClosedPipe(process.stderr);
  // `--version` is handled here rather than by commander: `publish --version V` needs the flag.
  if (argv[2] === '--version' || argv[2] === '-V') {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    process.exitCode = reportError(error instanceof ModelsError ? error : new ModelsError('E_USAGE', String((error as Error).message ?? error)), {});
  }
}

