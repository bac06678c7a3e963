// `deadrop call <address> …`: one request to a worker, its answer printed for people or, with --json, for scripts.
import { createWriteStream } from 'node:fs';
import { link, stat, unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { DescriptorError } from '../../sdk/e2e/descriptor-check.js';
import { type FsOperation, REQUEST_TYPES } from '../../sdk/e2e/protocol.js';
import type { ExecResult } from '../worker/exec-receiver.js';
import { describeExit, formatBytes, formatFound, formatListing, formatMatches } from './format.js';
import { describeRelayFailure } from './relay-errors.js';
import { defaultUserKeyFile, loadUserKeys, UserKeyError } from './user-keys.js';
import { AnswerError, connectWorker, DEFAULT_TIMEOUT_SECONDS, type WorkerClient } from './worker-client.js';

/** Where a command writes; tests pass their own. */
export interface CommandIo {
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean };
  fetch?: typeof fetch;
}

export const processIo = (): CommandIo => ({ stdout: process.stdout, stderr: process.stderr });

export const CALL_USAGE = `Usage: deadrop call <address> <command> [options]

Sends one end-to-end encrypted request to a worker and prints its answer. <address> is what the
worker printed on start: https://relay.example/public/<key>#<id>. The worker's key is checked
against <id> before anything is sent.

Commands:
  fs list [path]                      List a directory ("/" lists the worker's roots)
  fs stat <path>                      Type, size and modification time
  fs find <pattern> [--in <path>]     Find by name (a glob such as "*.pdf")
  fs find <pattern> --content <text>  Find lines holding <text> in files named <pattern>
  fs get <path> [-o <file>] [--force] Download ("-o -" writes to stdout; --force replaces a file)
  fs put <file> <path> [--overwrite]  Upload (a <path> ending in "/" keeps the file's name)
  fs mkdir <path>                     Make a directory
  fs rm <path>                        Delete a file or an empty directory
  exec <name> [param=value …]         Run a command the worker names; exits with its exit code
  wol <name>                          Wake a machine the worker names

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
};

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

/** Runs the command against `worker`; answers the exit code. */
async function perform(
  worker: WorkerClient,
  words: string[],
  values: Values,
  io: CommandIo,
  timeout: number,
) {
  const [receiver, verb, ...rest] = words;
  const show = (result: unknown, human: string) =>
    write(io.stdout, values.json ? JSON.stringify(result) : human);
  const ask = <T>(typ: string, body: unknown) => worker.request<T>(typ, body, { ttlSeconds: timeout });
  const showProgress = !values.json && (values.progress === true || io.stderr.isTTY === true);

  if (receiver === 'exec') {
    if (!verb) throw new UsageError('Name the command: exec <name> [param=value …].');
    const result = await ask<ExecResult>(REQUEST_TYPES.exec, { name: verb, params: execParams(rest) });
    if (values.json) write(io.stdout, JSON.stringify(result));
    else {
      io.stdout.write(result.stdout);
      io.stderr.write(result.stderr);
      const exit = describeExit(result);
      if (exit) write(io.stderr, exit);
    }
    return result.exitCode ?? 1;
  }
  if (receiver === 'wol') {
    if (!verb) throw new UsageError('Name the machine: wol <name>.');
    atMost(rest, 0, `wol ${verb}`);
    const result = await ask<{ target: string; mac: string }>(REQUEST_TYPES.wol, { target: verb });
    show(result, `Sent a magic packet to ${result.target} (${result.mac}).`);
    return 0;
  }
  if (receiver !== 'fs') throw new UsageError(`"${receiver}" is not a command; use fs, exec or wol.`);
  const operation = verb === undefined ? undefined : FS_VERBS[verb];
  if (!operation) {
    throw new UsageError(`"fs ${verb ?? ''}" is not a command; use list, stat, find, get, put, mkdir or rm.`);
  }
  const [first, second] = rest;
  const need = (value: string | undefined, what: string) => {
    if (!value) throw new UsageError(`fs ${verb} needs ${what}.`);
    return value;
  };
  atMost(rest, verb === 'put' ? 2 : 1, `fs ${verb}`);
  try {
    return await performFs(verb as string, first, second);
  } catch (error) {
    throw inUserWords(
      error,
      `fs ${verb}`,
      values.content !== undefined && verb === 'find' ? 'grep' : operation,
    );
  }

  async function performFs(verb: string, first: string | undefined, second: string | undefined) {
    switch (verb) {
      case 'list': {
        const listing = await ask<Parameters<typeof formatListing>[0]>(REQUEST_TYPES.fs('list'), {
          path: first ?? '/',
        });
        show(listing, formatListing(listing));
        return 0;
      }
      case 'stat': {
        const info = await ask<{ path: string; type: string; size: number; mtime: number }>(
          REQUEST_TYPES.fs('stat'),
          { path: need(first, 'a path') },
        );
        show(
          info,
          `${info.path}  ${info.type}  ${formatBytes(info.size)}  ${new Date(info.mtime).toISOString()}`,
        );
        return 0;
      }
      case 'find': {
        const pattern = need(first, 'a name pattern, such as "*.pdf"');
        const where = values.in ?? '/';
        if (values.content !== undefined) {
          const found = await ask<Parameters<typeof formatMatches>[0]>(REQUEST_TYPES.fs('grep'), {
            path: where,
            pattern,
            text: values.content,
          });
          show(found, formatMatches(found));
        } else {
          const found = await ask<Parameters<typeof formatFound>[0]>(REQUEST_TYPES.fs('find'), {
            path: where,
            pattern,
          });
          show(found, formatFound(found));
        }
        return 0;
      }
      case 'get':
        return get(need(first, 'the path of a file'));
      case 'put': {
        const file = need(first, 'a local file and a path');
        const target = need(second, 'the path to upload to');
        return put(file, target.endsWith('/') ? `${target}${basename(file)}` : target);
      }
      default: {
        const made = await ask<{ path: string }>(REQUEST_TYPES.fs(FS_VERBS[verb] as FsOperation), {
          path: need(first, 'a path'),
        });
        show(made, `${verb === 'rm' ? 'Deleted' : 'Made'} ${made.path}.`);
        return 0;
      }
    }
  }

  async function get(path: string) {
    const target = values.output ?? basename(path);
    if (target !== '-' && !values.force && (await exists(target))) {
      throw new Error(`${target} exists here; add --force to replace it, or -o to save elsewhere.`);
    }
    const [{ downloadFile }, { createProgressBar }] = await Promise.all([
      import('./transfers.js'),
      import('./progress.js'),
    ]);
    const partial = `${target}.${process.pid}.deadrop-part`;
    const destination = target === '-' ? io.stdout : createWriteStream(partial);
    const bar = createProgressBar(basename(path), io.stderr, showProgress);
    try {
      const result = await downloadFile(worker, path, destination, {
        progress: bar,
        timeoutSeconds: timeout,
      });
      bar.stop();
      if (target !== '-') await keep(partial, target, values.force === true);
      const summary = { ...result, file: target };
      write(
        target === '-' ? io.stderr : io.stdout,
        values.json ? JSON.stringify(summary) : `Saved ${path} to ${target} (${formatBytes(result.size)}).`,
      );
      return 0;
    } catch (error) {
      bar.stop();
      throw error;
    } finally {
      if (target !== '-') await unlink(partial).catch(() => {});
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
      show(
        result,
        `Uploaded ${file} to ${result.path} (${formatBytes(result.size)}, sha256 ${result.sha256}).`,
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
  if (!address || words.length === 0 || !(timeout > 0 && timeout <= 3600)) {
    write(
      io.stderr,
      `deadrop call: give an address and a command${timeout > 0 ? '' : ', and --timeout in seconds'}.\n\n${CALL_USAGE}`,
    );
    return 2;
  }
  let relay: string | undefined;
  try {
    const user = await loadUserKeys(values.key ?? defaultUserKeyFile());
    const worker = await connectWorker(address, { user, ...(io.fetch && { fetch: io.fetch }) });
    relay = worker.address.relay;
    return await perform(worker, words, values, io, timeout);
  } catch (error) {
    if (error instanceof UsageError) {
      write(io.stderr, `deadrop call: ${error.message}\n\n${CALL_USAGE}`);
      return 2;
    }
    if (values.json && error instanceof AnswerError)
      write(io.stdout, JSON.stringify({ error: { code: error.code, message: error.message } }));
    write(io.stderr, `deadrop call: ${messageOf(error, relay ?? relayOfAddress(address))}`);
    return 1;
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
    },
  });
}
