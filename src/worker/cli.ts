// The worker's commands for src/cli.ts: `deadrop worker`, `deadrop call` and `deadrop user`.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatBoxAddress, parseAddress } from '../../sdk/e2e/address.js';
import { DeadropError } from '../../sdk/index.js';
import { type CommandIo, processIo, runCall } from '../client/call-command.js';
import { describeRelayFailure } from '../client/relay-errors.js';
import { runUser } from '../client/user-command.js';
import { loadWorkerConfig, WorkerConfigError } from './config.js';
import { describeEvent } from './events.js';
import { type RunningWorker, startWorker } from './worker.js';

export const WORKER_USAGE = `Usage: deadrop worker [--config <file>]

Runs a worker: it connects to a relay, publishes its key, and carries out the end-to-end
encrypted requests of the users its config lists, with the receivers its config enables
(fs, exec, wol). It prints its address on start; give that to its users.

Options:
  --config, -c <file>  The worker's YAML config (default: worker.yml)

A minimal worker.yml:
  relay: https://relay.example
  keyFile: worker-key.json          # made on first start, mode 0600
  receivers:
    fs:
      roots: { docs: /home/me/docs }
      operations: [list, stat, find, grep, download]
  auth:
    - name: me
      key: <public key from "deadrop user init">
      allow: { fs: "*" }`;

/** Options for tests: where to write, and a handle on the worker instead of signal handlers. */
export interface WorkerCommandOptions {
  io?: CommandIo;
  /** Called with the running worker; without it, SIGINT and SIGTERM stop the worker and the process. */
  onStart?: (worker: RunningWorker) => void;
}

const timestamp = () => new Date().toISOString();

/**
 * `deadrop worker --config worker.yml`: checks the config (each problem one sentence, exit code 1), opens or
 * makes the key file, prints the address and runs until a signal (undefined: the process keeps running).
 */
export async function runWorkerCommand(
  args: string[],
  options: WorkerCommandOptions = {},
): Promise<number | undefined> {
  const io = options.io ?? processIo();
  let values: { help?: boolean; config?: string };
  try {
    ({ values } = parseArgs({
      args,
      options: { help: { type: 'boolean', short: 'h' }, config: { type: 'string', short: 'c' } },
    }));
  } catch (error) {
    io.stderr.write(`deadrop worker: ${(error as Error).message}\n\n${WORKER_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(`${WORKER_USAGE}\n`);
    return 0;
  }
  const file = values.config ?? 'worker.yml';
  let worker: RunningWorker;
  try {
    const config = await loadWorkerConfig(file);
    if (!existsSync(config.keyFile)) {
      io.stderr.write(
        `${timestamp()} first start: making the worker's key and its id in ${config.keyFile} ` +
          `(fingerprint level ${config.fingerprint.level}: a few seconds)\n`,
      );
    }
    worker = await startWorker({
      config,
      emit: (event) => io.stderr.write(`${timestamp()} ${describeEvent(event)}\n`),
    });
  } catch (error) {
    if (error instanceof WorkerConfigError) io.stderr.write(`deadrop worker: ${error.message}\n`);
    else if (error instanceof DeadropError)
      io.stderr.write(`deadrop worker: could not start: ${describeRelayFailure(error, error.url)}\n`);
    else io.stderr.write(`deadrop worker: could not start: ${(error as Error).message}\n`);
    return 1;
  }
  io.stderr.write(`${timestamp()} worker ${worker.id} running; its address (give it to its users):\n`);
  io.stdout.write(`${worker.address}\n`);
  io.stderr.write(`${timestamp()} in a browser: ${formatBoxAddress(parseAddress(worker.address))}\n`);
  if (options.onStart) options.onStart(worker);
  else {
    const stop = async () => {
      io.stderr.write(`${timestamp()} stopping\n`);
      await worker.stop();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
  return undefined;
}

/** `deadrop call <address> …`: one request to a worker; the exit code (0 done, 1 failed, 2 usage). */
export function runCallCommand(args: string[], io?: CommandIo): Promise<number> {
  return runCall(args, io);
}

/** `deadrop user init`: makes the user's key pair and prints its public key; the exit code. */
export function runUserCommand(args: string[], io?: CommandIo): Promise<number> {
  return runUser(args, io);
}
