// `deadrop call <address> …`: one request to a worker, its answer printed for people or, with --json, for scripts.
import { link, stat, unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { DescriptorError } from '../../sdk/e2e/descriptor-check.js';
import { type FsOperation, REQUEST_TYPES, type WorkerOffer } from '../../sdk/e2e/protocol.js';
import { formatTicket, parseTicket } from '../../sdk/e2e/ticket.js';
import type { ExecResult } from '../worker/exec-receiver.js';
import {
  describeExit,
  formatBytes,
  formatFound,
  formatListing,
  formatMatches,
  formatOffer,
} from './format.js';
import { nodeFetch } from './node-fetch.js';
import { describeRelayFailure } from './relay-errors.js';
import type { DownloadInfo } from './transfers.js';
import { defaultUserKeyFile, loadUserKeys, UserKeyError } from './user-keys.js';
import {
  AnswerError,
  connectWorker,
  DEFAULT_TIMEOUT_SECONDS,
  fetchTicketAnswer,
  type WorkerClient,
} from './worker-client.js';

/** Where a command writes; tests pass their own. */
export interface CommandIo {
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean };
  /** How the relay is asked; node:http by default (the global fetch costs a command a quarter second to load). */
  fetch?: typeof fetch;
}

export const processIo = (): CommandIo => ({ stdout: process.stdout, stderr: process.stderr });

export const CALL_USAGE = `Usage: deadrop call <address> <command> [options]
       deadrop call <address> --detach [--lifetime <duration>] <command>
       deadrop call --ticket <ticket> [--timeout <s>]

Sends one end-to-end encrypted request to a worker and prints its answer. <address> is what the
worker printed on start: https://relay.example/public/<key>#<id>. The worker's key is checked
against <id> before anything is sent.

Commands:
  fs list [path]                      List a directory ("/" lists the worker's roots)
  fs stat <path>                      Type, size and modification time
  fs find <pattern> [--in <path>]     Find by name (a glob such as "*.pdf")
  fs find <pattern> --content <text>  Find lines holding <text> in files named <pattern>
  fs get <path> [-o <file>] [--force] Download a file, or a folder as a tar archive (<name>.tar);
                                      "-o -" writes to stdout; --force replaces a local file
  fs put <file> <path> [--overwrite]  Upload (a <path> ending in "/" keeps the file's name)
  fs mkdir <path>                     Make a directory
  fs rm <path>                        Delete a file or an empty directory
  exec <name> [param=value …]         Run a command the worker names; exits with its exit code
  wol <name>                          Wake a machine the worker names
  info                                What you may use on this worker

Requests that wait for a stopped worker:
  --detach           Leave the request for the worker and print a ticket (the last line on stdout)
                     instead of waiting; the worker carries it out when it next runs, within
                     --lifetime. Not for fs get and fs put, whose bytes need both sides at once.
  --lifetime <d>     How long the request waits: 90s, 30m, 8h, 2d (default and most: the relay's
                     data lifetime, DEADROP_TTL, as the worker reported it; a day if it did not)
  --ticket <ticket>  Fetch the answer of a detached request and print it as if it had waited
                     (waits --timeout seconds for it; an answer is read once)

Options:
  --key <file>     Your user key (default ~/.config/deadrop/user.json; see "deadrop user init")
  --json           Print the answer as JSON, for scripts
  --progress       Show the transfer progress bar even when stderr is not a terminal
  --timeout <s>    Seconds to wait for the worker (default ${DEFAULT_TIMEOUT_SECONDS})
  --force          fs get: replace a local file that exists`;

class UsageError extends Error {}

const write = (stream: Writable, text: string) => {
  if (text) stream.write(text.endsWith('\n') ? text : `${text}\n`);
};

/** Parses `param=value` arguments of `exec`. */
function execParams(args: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const arg of args) {
    const at = arg.indexOf('=');
    if (at < 1) throw new UsageError(`"${arg}" is not a parameter; write name=value.`);
    params[arg.slice(0, at)] = arg.slice(at + 1);
  }
  return params;
}

type Values = {
  json?: boolean;
  progress?: boolean;
  output?: string;
  content?: string;
  in?: string;
  overwrite?: boolean;
  force?: boolean;
  timeout?: string;
  detach?: boolean;
  lifetime?: string;
  ticket?: string;
  key?: string;
};

/** A detached request lives a day unless the worker reported its relay's TTL: the relay's default DEADROP_TTL. */
const DEFAULT_DETACHED_SECONDS = 86_400;
/** The worker's own limit on a request's lifetime (MAX_REQUEST_LIFETIME_SECONDS). */
const MAX_DETACHED_SECONDS = 7 * 86_400;

/** Seconds of `90s`, `30m`, `8h`, `2d` or a bare number of seconds; undefined for anything else. */
function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[(match[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(match[1]) * unit);
}

/** The file operation each `fs` word asks for: what the worker calls it, as its refusals say. */
const FS_VERBS: Record<string, FsOperation> = {
  list: 'list',
  stat: 'stat',
  find: 'find',
  get: 'download',
  put: 'upload',
  mkdir: 'mkdir',
  rm: 'delete',
};

/**
 * A refusal in the words the user typed: the worker names its operations (`delete`), the user typed `fs rm`.
 * Other answers pass as they are.
 */
function inUserWords(error: unknown, typed: string, operation: string): unknown {
  if (!(error instanceof AnswerError)) return error;
  const named = typed === operation ? `"${typed}"` : `"${typed}" (the file operation "${operation}")`;
  if (error.code === 'unsupported')
    return new AnswerError(
      error.code,
      `This worker does not offer ${named}; its owner enables it in worker.yml.`,
    );
  if (error.code === 'forbidden' && /may not use the file operation/.test(error.message))
    return new AnswerError(
      error.code,
      `You may not use ${named} on this worker; its owner grants it under "allow" in worker.yml.`,
    );
  return error;
}

/** Refuses more positional words than `count`: a stray word is a mistake, not something to ignore. */
function atMost(words: string[], count: number, command: string) {
  if (words.length > count) {
    throw new UsageError(
      `${command} takes ${count === 0 ? 'no' : `at most ${count}`} argument${count === 1 ? '' : 's'}, but got "${words.slice(count).join(' ')}" too.`,
    );
  }
}

/** Throws unless `file` is a local file that can be read: a sentence, not a raw ENOENT. */
async function requireLocalFile(file: string): Promise<void> {
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new Error(
      error.code === 'ENOENT'
        ? `There is no file ${file} here to upload.`
        : `The file ${file} cannot be read (${error.code}).`,
    );
  });
  if (!info.isFile()) throw new Error(`${file} is not a file; fs put uploads one file.`);
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** A request that is not a transfer: what to send, and the command as the user typed it (to word its answer). */
interface PlannedRequest {
  typ: string;
  body: unknown;
  /** "fs list", "fs stat", "fs find", "fs grep", "fs mkdir", "fs rm", "exec", "wol" or "info". */
  command: string;
}

/** The words typed for `command` and the worker's name of its operation, for refusals in the user's words. */
function wordsOf(command: string): { typed: string; operation: string } {
  if (command === 'fs grep') return { typed: 'fs find', operation: 'grep' };
  const verb = command.startsWith('fs ') ? command.slice(3) : command;
  return { typed: command, operation: FS_VERBS[verb] ?? verb };
}

/** What `words` ask of the worker, for every command but the transfers (fs get, fs put). */
function planRequest(words: string[], values: Values): PlannedRequest {
  const [receiver, verb, ...rest] = words;
  if (receiver === 'info') {
    atMost([verb, ...rest].filter((word) => word !== undefined) as string[], 0, 'info');
    return { typ: REQUEST_TYPES.info, body: {}, command: 'info' };
  }
  if (receiver === 'exec') {
    if (!verb) throw new UsageError('Name the command: exec <name> [param=value …].');
    return { typ: REQUEST_TYPES.exec, body: { name: verb, params: execParams(rest) }, command: 'exec' };
  }
  if (receiver === 'wol') {
    if (!verb) throw new UsageError('Name the machine: wol <name>.');
    atMost(rest, 0, `wol ${verb}`);
    return { typ: REQUEST_TYPES.wol, body: { target: verb }, command: 'wol' };
  }
  if (receiver !== 'fs') throw new UsageError(`"${receiver}" is not a command; use fs, exec, wol or info.`);
  const operation = verb === undefined ? undefined : FS_VERBS[verb];
  if (!operation) {
    throw new UsageError(`"fs ${verb ?? ''}" is not a command; use list, stat, find, get, put, mkdir or rm.`);
  }
  atMost(rest, verb === 'put' ? 2 : 1, `fs ${verb}`);
  const [first] = rest;
  const need = (value: string | undefined, what: string) => {
    if (!value) throw new UsageError(`fs ${verb} needs ${what}.`);
    return value;
  };
  switch (verb) {
    case 'list':
      return { typ: REQUEST_TYPES.fs('list'), body: { path: first ?? '/' }, command: 'fs list' };
    case 'find': {
      const pattern = need(first, 'a name pattern, such as "*.pdf"');
      const path = values.in ?? '/';
      return values.content !== undefined
        ? {
            typ: REQUEST_TYPES.fs('grep'),
            body: { path, pattern, text: values.content },
            command: 'fs grep',
          }
        : { typ: REQUEST_TYPES.fs('find'), body: { path, pattern }, command: 'fs find' };
    }
    case 'get':
    case 'put':
      throw new UsageError(`fs ${verb} is a transfer; it is not planned as a message.`);
    default:
      return {
        typ: REQUEST_TYPES.fs(operation),
        body: { path: need(first, 'a path') },
        command: `fs ${verb}`,
      };
  }
}

/** Prints the result of a planned request as `command` words it; answers the exit code. */
function showResult(command: string, result: unknown, values: Values, io: CommandIo): number {
  const show = (human: string) => write(io.stdout, values.json ? JSON.stringify(result) : human);
  switch (command) {
    case 'exec': {
      const ran = result as ExecResult;
      if (values.json) write(io.stdout, JSON.stringify(ran));
      else {
        io.stdout.write(ran.stdout);
        io.stderr.write(ran.stderr);
        const exit = describeExit(ran);
        if (exit) write(io.stderr, exit);
      }
      return ran.exitCode ?? 1;
    }
    case 'wol': {
      const woken = result as { target: string; mac: string };
      show(`Sent a magic packet to ${woken.target} (${woken.mac}).`);
      return 0;
    }
    case 'info':
      show(formatOffer(result as WorkerOffer));
      return 0;
    case 'fs list':
      show(formatListing(result as Parameters<typeof formatListing>[0]));
      return 0;
    case 'fs stat': {
      const info = result as { path: string; type: string; size: number; mtime: number };
      show(`${info.path}  ${info.type}  ${formatBytes(info.size)}  ${new Date(info.mtime).toISOString()}`);
      return 0;
    }
    case 'fs find':
      show(formatFound(result as Parameters<typeof formatFound>[0]));
      return 0;
    case 'fs grep':
      show(formatMatches(result as Parameters<typeof formatMatches>[0]));
      return 0;
    default:
      show(`${command === 'fs rm' ? 'Deleted' : 'Made'} ${(result as { path: string }).path}.`);
      return 0;
  }
}

/** Runs the command against `worker`; answers the exit code. */
async function perform(
  worker: WorkerClient,
  words: string[],
  values: Values,
  io: CommandIo,
  timeout: number,
) {
  const [receiver, verb, ...rest] = words;
  const showProgress = !values.json && (values.progress === true || io.stderr.isTTY === true);
  if (receiver === 'fs' && (verb === 'get' || verb === 'put')) {
    atMost(rest, verb === 'put' ? 2 : 1, `fs ${verb}`);
    const [first, second] = rest;
    const need = (value: string | undefined, what: string) => {
      if (!value) throw new UsageError(`fs ${verb} needs ${what}.`);
      return value;
    };
    try {
      if (verb === 'get') return await get(need(first, 'the path of a file or folder'));
      const file = need(first, 'a local file and a path');
      const target = need(second, 'the path to upload to');
      return await put(file, target.endsWith('/') ? `${target}${basename(file)}` : target);
    } catch (error) {
      throw inUserWords(error, `fs ${verb}`, FS_VERBS[verb] as string);
    }
  }
  const planned = planRequest(words, values);
  try {
    const result = await worker.request(planned.typ, planned.body, { ttlSeconds: timeout });
    return showResult(planned.command, result, values, io);
  } catch (error) {
    const { typed, operation } = wordsOf(planned.command);
    throw inUserWords(error, typed, operation);
  }

  async function get(path: string) {
    if (
      values.output !== undefined &&
      values.output !== '-' &&
      !values.force &&
      (await exists(values.output))
    ) {
      throw new Error(`${values.output} exists here; add --force to replace it, or -o to save elsewhere.`);
    }
    const [{ downloadFile }, { createProgressBar }, { createFileSink }] = await Promise.all([
      import('./transfers.js'),
      import('./progress.js'),
      import('../../sdk/e2e/node-streams.js'),
    ]);
    let target = values.output ?? basename(path);
    let partial: string | undefined;
    const bar = createProgressBar(basename(path), io.stderr, showProgress);
    /** Where the bytes go, known once the answer says whether a file or a folder (as "<name>.tar") comes. */
    const destination = async (info: DownloadInfo) => {
      if (target === '-') return io.stdout;
      if (values.output === undefined && info.type === 'dir') target = info.name;
      if (values.output === undefined && !values.force && (await exists(target))) {
        throw new Error(`${target} exists here; add --force to replace it, or -o to save elsewhere.`);
      }
      partial = `${target}.${process.pid}.deadrop-part`;
      return createFileSink(partial);
    };
    try {
      const result = await downloadFile(worker, path, destination, {
        progress: bar,
        timeoutSeconds: timeout,
      });
      bar.stop();
      if (partial) await keep(partial, target, values.force === true);
      const summary = { ...result, file: target };
      const human = result.folder
        ? `Saved ${path} to ${target} as a tar archive (${result.folder.files} files, ${formatBytes(result.folder.bytes)}).`
        : `Saved ${path} to ${target} (${formatBytes(result.size)}).`;
      write(target === '-' ? io.stderr : io.stdout, values.json ? JSON.stringify(summary) : human);
      return 0;
    } catch (error) {
      bar.stop();
      throw error;
    } finally {
      if (partial) await unlink(partial).catch(() => {});
    }
  }

  async function put(file: string, path: string) {
    await requireLocalFile(file);
    const [{ uploadFile }, { createProgressBar }] = await Promise.all([
      import('./transfers.js'),
      import('./progress.js'),
    ]);
    const bar = createProgressBar(basename(file), io.stderr, showProgress);
    try {
      const result = await uploadFile(worker, file, path, {
        overwrite: values.overwrite,
        progress: bar,
        timeoutSeconds: timeout,
      });
      bar.stop();
      write(
        io.stdout,
        values.json
          ? JSON.stringify(result)
          : `Uploaded ${file} to ${result.path} (${formatBytes(result.size)}, sha256 ${result.sha256}).`,
      );
      return 0;
    } catch (error) {
      bar.stop();
      if (error instanceof AnswerError && error.code === 'conflict' && !values.overwrite) {
        throw new AnswerError(error.code, `${path} exists on the worker; add --overwrite to replace it.`);
      }
      throw error;
    }
  }
}

/** `--detach`: leaves the request for the worker and prints its ticket as the last line on stdout. */
async function detach(worker: WorkerClient, words: string[], values: Values, io: CommandIo) {
  const [receiver, verb] = words;
  if (receiver === 'fs' && (verb === 'get' || verb === 'put')) {
    throw new UsageError(
      `fs ${verb} cannot wait for a stopped worker: its bytes stream through the relay while both sides are there, and the relay keeps none of them. Run it when the worker is back.`,
    );
  }
  const planned = planRequest(words, values);
  const reported = worker.descriptor.ttl;
  const most = Math.min(MAX_DETACHED_SECONDS, reported && reported > 0 ? reported : DEFAULT_DETACHED_SECONDS);
  const asked = values.lifetime === undefined ? most : parseDuration(values.lifetime);
  if (asked === undefined || asked < 1) {
    throw new UsageError(`--lifetime takes a duration such as 90s, 30m, 8h or 2d, not "${values.lifetime}".`);
  }
  const lifetime = Math.min(asked, most);
  const ticket = await worker.detach(planned.typ, planned.body, {
    lifetimeSeconds: lifetime,
    command: planned.command,
  });
  const text = formatTicket(ticket);
  const until = new Date(ticket.exp * 1000).toISOString();
  if (asked > most) {
    write(
      io.stderr,
      `The relay keeps requests ${most} s (${reported ? 'its DEADROP_TTL' : 'assumed: the worker did not say'}); the request lives that long, not ${asked} s.`,
    );
  }
  write(
    io.stderr,
    `Left for worker ${ticket.id}: ${planned.command}. It is carried out if the worker takes requests before ${until}; ` +
      `its answer then waits on the relay for one read. Fetch it with:\n  deadrop call --ticket ${text}`,
  );
  write(io.stdout, values.json ? JSON.stringify({ ticket: text, rid: ticket.rid, exp: ticket.exp }) : text);
  return 0;
}

/** `--ticket`: waits for the answer of a detached request and prints it as the request itself would have. */
async function fetchTicket(text: string, values: Values, io: CommandIo, timeout: number) {
  const ticket = parseTicket(text);
  const user = await loadUserKeys(values.key ?? defaultUserKeyFile());
  const answer = await fetchTicketAnswer(ticket, {
    user,
    waitSeconds: timeout,
    fetch: io.fetch ?? nodeFetch,
  });
  if (answer === undefined) {
    const expired = ticket.exp * 1000 <= Date.now();
    throw new AnswerError(
      'no_answer',
      expired
        ? `No answer came for this ticket, and its request expired at ${new Date(ticket.exp * 1000).toISOString()}: the worker did not take it in time, or its answer was read already.`
        : `No answer yet: worker ${ticket.id} has not carried the request out (it may be stopped); it still may until ${new Date(ticket.exp * 1000).toISOString()}. Ask again later; an answer is read once.`,
    );
  }
  const { typed, operation } = wordsOf(ticket.command);
  if (!answer.ok)
    throw inUserWords(new AnswerError(answer.error.code, answer.error.message), typed, operation);
  return showResult(ticket.command, answer.result, values, io);
}

/**
 * Gives the downloaded `partial` the name `target`: without `force` only if no file took that name meanwhile
 * (link() fails rather than replace one), with it by rename.
 */
async function keep(partial: string, target: string, force: boolean): Promise<void> {
  if (force) {
    const { rename } = await import('node:fs/promises');
    await rename(partial, target);
    return;
  }
  await link(partial, target).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'EEXIST'
      ? new Error(`${target} appeared here meanwhile; it was kept. Add --force to replace it.`)
      : error;
  });
}

/**
 * `deadrop call`: answers the exit code (0 done, 1 refused or failed, 2 usage; exec: the command's own). Every
 * failure (address, key, descriptor, relay, refusal, transfer) is one line on stderr.
 */
export async function runCall(args: string[], io: CommandIo = processIo()): Promise<number> {
  let parsed: ReturnType<typeof parseCallArgs>;
  try {
    parsed = parseCallArgs(args);
  } catch (error) {
    write(io.stderr, `deadrop call: ${(error as Error).message}\n\n${CALL_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    write(io.stdout, CALL_USAGE);
    return 0;
  }
  const [address, ...words] = positionals;
  const timeout = values.timeout === undefined ? DEFAULT_TIMEOUT_SECONDS : Number(values.timeout);
  const usage = (sentence: string) => {
    write(io.stderr, `deadrop call: ${sentence}\n\n${CALL_USAGE}`);
    return 2;
  };
  if (!(timeout > 0 && timeout <= 3600)) return usage('--timeout takes seconds, from 1 to 3600.');
  if (values.ticket !== undefined) {
    if (positionals.length > 0 || values.detach) {
      return usage('--ticket takes no address and no command: the ticket names them.');
    }
  } else if (!address || words.length === 0) {
    return usage('give an address and a command.');
  }
  let relay: string | undefined;
  try {
    if (values.ticket !== undefined) return await fetchTicket(values.ticket, values, io, timeout);
    const user = await loadUserKeys(values.key ?? defaultUserKeyFile());
    const worker = await connectWorker(address as string, { user, fetch: io.fetch ?? nodeFetch });
    relay = worker.address.relay;
    if (values.detach) return await detach(worker, words, values, io);
    if (values.lifetime !== undefined) throw new UsageError('--lifetime goes with --detach.');
    return await perform(worker, words, values, io, timeout);
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message);
    if (values.json && error instanceof AnswerError)
      write(io.stdout, JSON.stringify({ error: { code: error.code, message: error.message } }));
    const where = relay ?? (address ? relayOfAddress(address) : undefined) ?? relayOfTicket(values.ticket);
    write(io.stderr, `deadrop call: ${messageOf(error, where)}`);
    return 1;
  }
}

/** The relay of a ticket, for the wording of a relay failure. */
function relayOfTicket(text: string | undefined): string | undefined {
  try {
    return text === undefined ? undefined : parseTicket(text).relay;
  } catch {
    return undefined;
  }
}

/** The relay part of an address, for the wording of a relay failure before the address was checked. */
function relayOfAddress(address: string): string | undefined {
  const at = address.indexOf('/public/');
  return at > 0 ? address.slice(0, at) : undefined;
}

/** The sentence for a failure: the worker's and the CLI's own as they are, a relay's in one wording. */
function messageOf(error: unknown, relay: string | undefined): string {
  const own =
    error instanceof AnswerError ||
    error instanceof DescriptorError ||
    error instanceof UserKeyError ||
    (error as Error).name === 'AddressError' ||
    (error as Error).name === 'TicketError' ||
    (error as Error).name === 'SealError';
  if (own || relay === undefined || !isRelayFailure(error)) return (error as Error).message;
  return describeRelayFailure(error, relay);
}

/** Whether `error` came from a request to the relay (an error answer, a network failure or a timeout). */
const isRelayFailure = (error: unknown) =>
  (error as Error)?.name === 'DeadropError' ||
  (error as Error)?.name === 'TimeoutError' ||
  (error instanceof TypeError && (error as Error).message === 'fetch failed');

function parseCallArgs(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      key: { type: 'string' },
      json: { type: 'boolean' },
      progress: { type: 'boolean' },
      output: { type: 'string', short: 'o' },
      content: { type: 'string' },
      in: { type: 'string' },
      overwrite: { type: 'boolean' },
      force: { type: 'boolean' },
      timeout: { type: 'string' },
      detach: { type: 'boolean' },
      lifetime: { type: 'string' },
      ticket: { type: 'string' },
    },
  });
}
