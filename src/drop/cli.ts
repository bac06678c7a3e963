// `deadrop drop`: send a file or a folder as a burn-after-read drop and print its link, fetch one (resuming an
// interrupted fetch), follow or revoke it.
import { mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  DropError,
  dropStatus,
  type FetchWait,
  formatOwnerToken,
  type OpenedDrop,
  openDrop,
  parseDropLink,
  parseOwnerToken,
  type ReadyDrop,
  revokeDrop,
  type SendWait,
  sendDrop,
} from '../../sdk/drop.js';
import { nodeSuite } from '../../sdk/e2e/native-suite.js';
import { DeadropError } from '../../sdk/index.js';
import { undiciHttp } from '../client/drop-http.js';
import { nodeFetch } from '../client/node-fetch.js';
import { createDropPipe } from '../client/node-pipe.js';
import { describeRelayFailure, parseRelayUrl } from '../client/relay-errors.js';
import { forgetFetch, openFileSink } from './file-sink.js';
import { type FileSource, openFileSource } from './file-source.js';
import { createProgress, type DropIo, readPassword } from './terminal.js';

const USAGE = `Usage: deadrop drop <command> [options]

A drop is a file encrypted on this machine and left on a relay for one download: the key travels
only in the link's #fragment, the relay holds ciphertext, and the first fetch burns it.

Commands:
  send <file|folder> [--password] [--relay <url>]
                     Encrypt and upload; the link is printed first, so it works at once.
                     A folder is sent as one tar archive. A drop larger than the relay
                     holds for an offline receiver (about 64 MiB by default) streams while
                     the receiver fetches: keep "send" running until it says it is done.
  get <link> [-o <file|dir>] [--extract]
                     Download, verify and save a drop. A wrong link or password burns
                     nothing. An interrupted get resumes when run again with the same link
                     (in the same directory).
  status <token> [--relay <url>]   Whether the drop was fetched (token from send)
  revoke <token> [--relay <url>]   Delete what remains of the drop

Options:
  --password     Protect the drop with a password too (Argon2id); asked on the terminal,
                 or read from $DEADROP_PASSWORD or the first line of stdin. "get" asks for
                 it when the drop has one
  --relay <url>  The relay (default: $DEADROP_URL or http://localhost:8080)
  -o <path>      Where to save (default: the sender's file name, in this directory)
  --extract      Unpack a folder drop (a tar archive) instead of saving the archive`;

const TAR_TYPE = 'application/x-tar';

/** Attempts at a password on a terminal: a wrong one burns nothing, so asking again is safe. */
const PASSWORD_ATTEMPTS = 3;

/** The process's streams, environment and directory; Ctrl-C aborts the command instead of killing it. */
function processIo(): DropIo & { dispose(): void } {
  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort(new Error('Interrupted.'));
  process.once('SIGINT', onSigint);
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    signal: interrupt.signal,
    dispose: () => process.off('SIGINT', onSigint),
  };
}

const relayOf = (io: DropIo, given: string | undefined) =>
  parseRelayUrl(given ?? io.env.DEADROP_URL ?? 'http://localhost:8080');

const sizeText = (bytes: number) =>
  bytes < 1024
    ? `${bytes} B`
    : bytes < 1024 ** 2
      ? `${(bytes / 1024).toFixed(1)} KiB`
      : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

/** Exit code of a command stopped by Ctrl-C, as shells expect. */
const INTERRUPTED = 130;

/** The file to send: the file itself, or a folder packed into a tar archive in a temporary directory. */
async function fileToSend(
  path: string,
): Promise<{ path: string; name: string; type?: string; cleanup(): Promise<void> }> {
  const info = await stat(path).catch(() => undefined);
  if (info?.isFile()) return { path, name: basename(path), cleanup: async () => {} };
  if (!info?.isDirectory()) throw new Error(`There is no file or folder to send at ${path}.`);
  const { create } = await import('tar');
  const dir = await mkdtemp(join(tmpdir(), 'deadrop-send-'));
  const name = `${basename(path)}.tar`;
  const archive = join(dir, name);
  await create({ cwd: dirname(path), file: archive, portable: true }, [basename(path)]);
  return { path: archive, name, type: TAR_TYPE, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** One line on stderr per kind of wait, not one per poll. */
function waitReporter(io: DropIo, onWait: (wait: SendWait | FetchWait) => string | undefined) {
  let last: string | undefined;
  return (wait: SendWait | FetchWait) => {
    const line = onWait(wait);
    if (line && line !== last) io.stderr.write(`\n${line}\n`);
    last = line;
  };
}

const relayWaitLine = (wait: SendWait | FetchWait) =>
  wait.reason === 'rate_limited'
    ? `The relay asks this address to slow down; waiting ${wait.seconds} s (DEADROP_WRITE_BUDGET, DEADROP_RATE_LIMIT).`
    : wait.reason === 'relay_unavailable'
      ? `The relay does not answer; trying again in ${wait.seconds} s.`
      : undefined;

async function send(args: string[], io: DropIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { password: { type: 'boolean' }, relay: { type: 'string' } },
  });
  if (positionals.length !== 1) {
    io.stderr.write(`deadrop: "drop send" takes one file or folder\n\n${USAGE}\n`);
    return 2;
  }
  const source = await fileToSend(resolve(io.cwd, positionals[0] as string));
  let file: FileSource | undefined;
  try {
    file = await openFileSource(source.path);
    const password = values.password ? await readPassword(io, 'Password for the drop: ', true) : undefined;
    const relay = relayOf(io, values.relay);
    let ready: ReadyDrop | undefined;
    const progress = createProgress(io, 'Sending ', file.size);
    try {
      await sendDrop(relay, file, {
        name: source.name,
        ...(source.type && { type: source.type }),
        password,
        cipher: nodeSuite,
        http: undiciHttp,
        pipe: createDropPipe(() => relay),
        signal: io.signal,
        onProgress: progress.update,
        onReady: (drop) => {
          ready = drop;
          const token = formatOwnerToken(drop);
          io.stdout.write(`${drop.link}\n`);
          io.stderr.write(
            `The link above opens ${source.name} (${sizeText(drop.size)}) once.\n` +
              `Sender token (keep it to follow or revoke the drop): ${token}\n` +
              `  deadrop drop status ${token} --relay ${relay}\n` +
              `  deadrop drop revoke ${token} --relay ${relay}\n`,
          );
          if (drop.size > drop.offlineLimit) {
            io.stderr.write(
              `This drop is larger than the ${sizeText(drop.offlineLimit)} the relay holds for a receiver who is offline: ` +
                'it streams while the receiver fetches it, so keep this running until it says it is done.\n',
            );
          }
        },
        onWait: waitReporter(io, (wait) =>
          wait.reason === 'receiver'
            ? 'Waiting for the receiver to fetch the rest of this drop.'
            : relayWaitLine(wait),
        ),
      });
    } catch (error) {
      progress.stop(0);
      if (ready) {
        const why = io.signal?.aborted ? 'Interrupted' : 'The upload failed';
        io.stderr.write(`${why}; the drop was withdrawn from the relay, so the link no longer opens.\n`);
        if (io.signal?.aborted) return INTERRUPTED;
      }
      throw error;
    }
    progress.stop(file.size);
    io.stderr.write(
      `Done: all of ${source.name} is on the relay or already fetched; the link opens it once, until it expires.\n`,
    );
    return 0;
  } finally {
    await file?.close();
    await source.cleanup();
  }
}

/** Text from the sender fit for a terminal: no control characters (no escape sequences). */
const printable = (text: string) => text.replace(/\p{Cc}/gu, '');

/** A file name from the sender that is safe to create here: no directories, no control characters, not hidden. */
function safeName(name: string): string {
  const cleaned = printable(basename(name.replace(/[\\/]/g, '/')))
    .trim()
    .replace(/^\./, '_');
  return cleaned === '' || cleaned === '_' || cleaned === '_.' ? 'drop' : truncateUtf8(cleaned, 200);
}

/** `text` cut to at most `bytes` bytes of UTF-8 (file systems count bytes), never inside a character. */
function truncateUtf8(text: string, bytes: number): string {
  let out = '';
  let used = 0;
  for (const char of text) {
    used += Buffer.byteLength(char);
    if (used > bytes) break;
    out += char;
  }
  return out;
}

/** `name`, or `name (1).ext`, `name (2).ext`… : the first that does not exist yet. */
async function freePath(dir: string, name: string): Promise<string> {
  const ext = extname(name);
  const stem = name.slice(0, name.length - ext.length);
  for (let n = 0; ; n++) {
    const candidate = join(dir, n === 0 ? name : `${stem} (${n})${ext}`);
    if (!(await exists(candidate))) return candidate;
  }
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** Opens the drop, asking again on a terminal when the password is wrong (nothing is burned by that). */
async function openWithPassword(link: string, io: DropIo): Promise<OpenedDrop> {
  const options = {
    cipher: nodeSuite,
    http: undiciHttp,
    pipe: createDropPipe(() => parseDropLink(link).relay),
  };
  // Without a password first: a mistyped link says so before anyone is asked for a password.
  try {
    return await openDrop(link, options);
  } catch (error) {
    if (!(error instanceof DropError && error.code === 'password_required')) throw error;
  }
  for (let attempt = 1; ; attempt++) {
    const password = await readPassword(io, 'Password of the drop: ');
    try {
      return await openDrop(link, { ...options, password });
    } catch (error) {
      const again = io.stdin.isTTY && io.env.DEADROP_PASSWORD === undefined && attempt < PASSWORD_ATTEMPTS;
      if (!(error instanceof DropError && error.code === 'wrong_password' && again)) throw error;
      io.stderr.write('Wrong password; nothing was fetched. Try again.\n');
    }
  }
}

/** Unpacks the tar archive at `archive` into `dir`, each top-level entry under a name that is still free. */
async function extractInto(archive: string, dir: string): Promise<string[]> {
  const { extract } = await import('tar');
  const staging = await mkdtemp(join(dir, '.deadrop-extract-'));
  try {
    // node-tar keeps every entry inside `cwd` (no absolute paths, no "..", no writing through links); only
    // files and folders are taken, owned by whoever runs this, without setuid or setgid bits.
    await extract({
      file: archive,
      cwd: staging,
      strict: true,
      preserveOwner: false,
      filter: (_path, entry) => 'type' in entry && (entry.type === 'File' || entry.type === 'Directory'),
      onReadEntry: (entry) => {
        if (entry.mode) entry.mode &= 0o777;
      },
    });
    const placed: string[] = [];
    for (const entry of await readdir(staging)) {
      const target = await freePath(dir, safeName(entry));
      await rename(join(staging, entry), target);
      placed.push(target);
    }
    return placed;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function get(args: string[], io: DropIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { output: { type: 'string', short: 'o' }, extract: { type: 'boolean' } },
  });
  if (positionals.length !== 1) {
    io.stderr.write(`deadrop: "drop get" takes one link\n\n${USAGE}\n`);
    return 2;
  }
  const link = positionals[0] as string;
  const { publicKey } = parseDropLink(link);
  const given = values.output === undefined ? undefined : resolve(io.cwd, values.output);
  const givenDir = given !== undefined && (await stat(given).catch(() => undefined))?.isDirectory();
  const dir = given === undefined || givenDir ? (given ?? io.cwd) : dirname(given);
  let drop: OpenedDrop;
  try {
    drop = await openWithPassword(link, io);
  } catch (error) {
    // A drop that is gone leaves nothing worth keeping of an earlier, interrupted fetch of it.
    if (error instanceof DropError && error.code === 'gone' && (await forgetFetch(dir, publicKey))) {
      io.stderr.write('What an earlier fetch of this drop kept here is removed.\n');
    }
    throw error;
  }
  const name = printable(drop.name);
  if (values.extract && drop.type !== TAR_TYPE) {
    throw new Error(`${name} is a file, not a folder drop: fetch it without --extract. Nothing was fetched.`);
  }
  if (values.extract && given !== undefined && !givenDir) {
    throw new Error(
      `With --extract, -o names a folder to unpack into; ${given} is not one. Nothing was fetched.`,
    );
  }
  if (given !== undefined && !givenDir && (await exists(given))) {
    throw new Error(`${given} exists already; choose another -o. Nothing was fetched.`);
  }
  // The name is chosen once the file is verified, so that nothing created meanwhile is overwritten.
  const chooseTarget = async () =>
    given === undefined || givenDir ? freePath(dir, safeName(drop.name)) : given;
  // Verified chunks go to a part file named after the drop, moved to the target once the whole file verified.
  const sink = await openFileSink(dir, drop.publicKey, drop, chooseTarget);
  io.stderr.write(
    sink.keptBytes > 0
      ? `Resuming ${name}: ${sizeText(sink.keptBytes)} of ${sizeText(drop.size)} kept from an earlier fetch\n`
      : `Fetching ${name} (${sizeText(drop.size)}, ${printable(drop.type)})\n`,
  );
  const progress = createProgress(io, 'Fetching', drop.size);
  let received = sink.keptBytes;
  progress.update(received);
  try {
    await drop.fetchInto(sink, {
      signal: io.signal,
      onProgress: (done) => {
        received = done;
        progress.update(done);
      },
      onWait: waitReporter(io, (wait) =>
        wait.reason === 'sender'
          ? 'Waiting for the sender to upload the rest of the drop.'
          : relayWaitLine(wait),
      ),
    });
  } catch (error) {
    progress.stop(received);
    if (sink.target()) {
      // The file is in place; only marking the drop fetched on the relay failed.
      io.stderr.write(`Saved ${sink.target()}, SHA-256 verified.\n`);
      throw error;
    }
    if (error instanceof DropError && !error.resumable) {
      await sink.discard();
      throw error;
    }
    await sink.keep();
    io.stderr.write(
      `${io.signal?.aborted ? 'Interrupted' : 'Stopped'}: ${sizeText(received)} of ${sizeText(drop.size)} is kept; ` +
        'run the same command again (in this directory) to resume.\n',
    );
    if (io.signal?.aborted) return INTERRUPTED;
    throw error;
  }
  progress.stop(drop.size);
  const target = sink.target() as string;
  io.stderr.write(`Saved ${drop.size} bytes, SHA-256 verified; the drop is now burned on the relay.\n`);
  if (values.extract) {
    const placed = await extractInto(target, dir).catch((error: unknown) => {
      throw new Error(`${(error as Error).message} The archive is kept at ${target}.`);
    });
    await rm(target, { force: true });
    io.stdout.write(`${placed.join('\n')}\n`);
    return 0;
  }
  io.stdout.write(`${target}\n`);
  return 0;
}

async function follow(command: 'status' | 'revoke', args: string[], io: DropIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { relay: { type: 'string' } },
  });
  if (positionals.length !== 1) {
    io.stderr.write(`deadrop: "drop ${command}" takes the sender token that "drop send" printed\n`);
    return 2;
  }
  const owner = parseOwnerToken(positionals[0] as string, relayOf(io, values.relay));
  if (command === 'revoke') {
    await revokeDrop(owner, { fetch: nodeFetch });
    io.stdout.write('Revoked: nothing of the drop is left on the relay.\n');
    return 0;
  }
  const { state, expiresIn, fetchedAt } = await dropStatus(owner, { fetch: nodeFetch });
  const lines: Record<typeof state, string> = {
    waiting: `Not fetched yet; it expires in ${expiresIn} s.`,
    fetching: `A receiver began fetching it and has not had all of it yet; what is left expires in ${expiresIn} s.`,
    fetched: `Fetched, at ${new Date(fetchedAt ?? 0).toISOString()}; nothing of it is left on the relay.`,
    gone: 'Gone: revoked or expired (or its upload failed).',
  };
  io.stdout.write(`${lines[state]}\n`);
  return 0;
}

/**
 * Runs `deadrop drop <args>`; answers the exit code: 0 done, 1 failed (the reason on stderr), 2 usage.
 * `io` defaults to the process's streams, environment and directory.
 */
export async function runDropCommand(args: string[], given?: DropIo): Promise<number> {
  const io = given ?? processIo();
  try {
    return await runWith(args, io);
  } finally {
    if (!given) (io as ReturnType<typeof processIo>).dispose();
  }
}

async function runWith(args: string[], io: DropIo): Promise<number> {
  const [command, ...rest] = args;
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    if (command === 'send') return await send(rest, io);
    if (command === 'get') return await get(rest, io);
    if (command === 'status' || command === 'revoke') return await follow(command, rest, io);
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`deadrop: ${(error as Error).message}\n`);
      return 2;
    }
    // A relay failure in the wording every command uses; drop, file and password failures as they are.
    const message =
      error instanceof DeadropError
        ? describeRelayFailure(error, error.url)
        : error instanceof Error
          ? error.message
          : String(error);
    io.stderr.write(`deadrop: ${message}\n`);
    return 1;
  }
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  io.stderr.write(`deadrop: unknown drop command "${command}"\n\n${USAGE}\n`);
  return 2;
}
