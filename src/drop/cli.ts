// `deadrop drop`: send a file as a burn-after-read drop and print its link, fetch one, follow or revoke it.
import { createWriteStream, openAsBlob } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { parseArgs } from 'node:util';
import {
  DropError,
  dropNeedsPassword,
  dropStatus,
  formatOwnerToken,
  type OpenedDrop,
  openDrop,
  parseDropLink,
  parseOwnerToken,
  revokeDrop,
  sendDrop,
} from '../../sdk/drop.js';
import { nodeSuite } from '../../sdk/e2e/native-suite.js';
import { DeadropError } from '../../sdk/index.js';
import { describeRelayFailure, parseRelayUrl } from '../client/relay-errors.js';
import { createProgress, type DropIo, readPassword } from './terminal.js';

const USAGE = `Usage: deadrop drop <command> [options]

A drop is a file encrypted on this machine and left on a relay for one download: the key travels
only in the link's #fragment, the relay holds ciphertext, and the first fetch burns it.

Commands:
  send <file> [--password] [--relay <url>]   Encrypt and upload a file; print its link
  get <link> [-o <file>]                      Download, verify and save a drop
  status <token> [--relay <url>]              Whether the drop was fetched (token from send)
  revoke <token> [--relay <url>]              Delete what remains of the drop

Options:
  --password     Protect the drop with a password too (Argon2id); asked on the terminal,
                 or read from $DEADROP_PASSWORD or the first line of stdin. "get" asks for
                 it when the drop has one
  --relay <url>  The relay (default: $DEADROP_URL or http://localhost:8080)
  -o <file>      Where to save (default: the sender's file name, in this directory)`;

/** Attempts at a password on a terminal: a wrong one burns nothing, so asking again is safe. */
const PASSWORD_ATTEMPTS = 3;

const processIo = (): DropIo => ({
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
});

const relayOf = (io: DropIo, given: string | undefined) =>
  parseRelayUrl(given ?? io.env.DEADROP_URL ?? 'http://localhost:8080');

const sizeText = (bytes: number) =>
  bytes < 1024
    ? `${bytes} B`
    : bytes < 1024 ** 2
      ? `${(bytes / 1024).toFixed(1)} KiB`
      : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

async function send(args: string[], io: DropIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { password: { type: 'boolean' }, relay: { type: 'string' } },
  });
  if (positionals.length !== 1) {
    io.stderr.write(`deadrop: "drop send" takes one file\n\n${USAGE}\n`);
    return 2;
  }
  const path = resolve(io.cwd, positionals[0] as string);
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) throw new Error(`There is no file to send at ${path}.`);
  const file = await openAsBlob(path);
  const password = values.password ? await readPassword(io, 'Password for the drop: ', true) : undefined;
  const relay = relayOf(io, values.relay);
  const progress = createProgress(io, 'Sending ', file.size);
  let drop: Awaited<ReturnType<typeof sendDrop>>;
  try {
    drop = await sendDrop(relay, file, {
      name: basename(path),
      password,
      cipher: nodeSuite,
      onProgress: progress.update,
    });
  } finally {
    progress.stop(file.size);
  }
  io.stdout.write(`${drop.link}\n`);
  const token = formatOwnerToken(drop);
  io.stderr.write(
    `Sent ${basename(path)} (${sizeText(drop.size)}) in ${drop.chunks} chunk(s): the link above opens it once.\n` +
      `Sender token (keep it to follow or revoke the drop): ${token}\n` +
      `  deadrop drop status ${token} --relay ${relay}\n` +
      `  deadrop drop revoke ${token} --relay ${relay}\n`,
  );
  return 0;
}

/** A file name from the sender that is safe to create here: no directories, no control characters. */
function safeName(name: string): string {
  const cleaned = basename(name.replace(/[\\/]/g, '/'))
    .replace(/\p{Cc}/gu, '')
    .trim();
  return cleaned === '' || cleaned === '.' || cleaned === '..' ? 'drop' : cleaned.slice(0, 200);
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
  if (!(await dropNeedsPassword(link))) return openDrop(link, { cipher: nodeSuite });
  for (let attempt = 1; ; attempt++) {
    const password = await readPassword(io, 'Password of the drop: ');
    try {
      return await openDrop(link, { password, cipher: nodeSuite });
    } catch (error) {
      const again = io.stdin.isTTY && io.env.DEADROP_PASSWORD === undefined && attempt < PASSWORD_ATTEMPTS;
      if (!(error instanceof DropError && error.code === 'wrong_password' && again)) throw error;
      io.stderr.write('Wrong password; nothing was fetched. Try again.\n');
    }
  }
}

async function get(args: string[], io: DropIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { output: { type: 'string', short: 'o' } },
  });
  if (positionals.length !== 1) {
    io.stderr.write(`deadrop: "drop get" takes one link\n\n${USAGE}\n`);
    return 2;
  }
  const link = positionals[0] as string;
  parseDropLink(link);
  const drop = await openWithPassword(link, io);
  const given = values.output === undefined ? undefined : resolve(io.cwd, values.output);
  const target =
    given === undefined
      ? await freePath(io.cwd, safeName(drop.name))
      : (await stat(given).catch(() => undefined))?.isDirectory()
        ? await freePath(given, safeName(drop.name))
        : given;
  // Written beside the target and renamed only once every chunk and the whole file's hash verified.
  const part = join(dirname(target), `.${basename(target)}.${process.pid}.part`);
  io.stderr.write(`Fetching ${drop.name} (${sizeText(drop.size)}, ${drop.type})\n`);
  const progress = createProgress(io, 'Fetching', drop.size);
  let received = 0;
  try {
    const body = Readable.fromWeb(drop.body as NodeReadableStream<Uint8Array>);
    body.on('data', (chunk: Uint8Array) => {
      received += chunk.length;
      progress.update(received);
    });
    await pipeline(body, createWriteStream(part, { flags: 'wx' }));
    await rename(part, target);
  } catch (error) {
    await unlink(part).catch(() => {});
    throw error;
  } finally {
    progress.stop(received);
  }
  io.stderr.write(`Saved ${drop.size} bytes, SHA-256 verified; the drop is now gone from the relay.\n`);
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
    await revokeDrop(owner);
    io.stdout.write('Revoked: nothing of the drop is left on the relay.\n');
    return 0;
  }
  const { state, expiresIn } = await dropStatus(owner);
  io.stdout.write(
    state === 'waiting'
      ? `Not fetched yet; it expires in ${expiresIn} s.\n`
      : state === 'partial'
        ? `A fetch began but did not finish (or failed); what is left expires in ${expiresIn} s.\n`
        : 'Gone: fetched, revoked or expired.\n',
  );
  return 0;
}

/**
 * Runs `deadrop drop <args>`; answers the exit code: 0 done, 1 failed (the reason on stderr), 2 usage.
 * `io` defaults to the process's streams, environment and directory.
 */
export async function runDropCommand(args: string[], io: DropIo = processIo()): Promise<number> {
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
