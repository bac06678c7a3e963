// The command receiver: named commands with a fixed argv, checked parameters, no shell, a timeout and an output cap.
import { spawn } from 'node:child_process';
import { type OfferedParam, WorkerError } from '../../sdk/e2e/protocol.js';
import { isRecord } from './config-fields.js';
import { type ExecCommand, type ExecConfig, PLACEHOLDER, paramAccepts } from './receiver-config.js';

/** What a command did. */
export interface ExecResult {
  name: string;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Output beyond the cap was dropped. */
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

/**
 * The argv of `command` with each `{param}` replaced by the request's value (or the default). Every value
 * must pass its pattern or enum, and no parameter the command does not define is accepted.
 */
export function buildArgv(name: string, command: ExecCommand, params: unknown): string[] {
  const given = params ?? {};
  if (!isRecord(given))
    throw new WorkerError('bad_request', 'Command parameters must be a mapping of names to texts.');
  for (const key of Object.keys(given)) {
    if (!command.params.has(key))
      throw new WorkerError('bad_request', `The command "${name}" has no parameter "${key}".`);
  }
  const values = new Map<string, string>();
  for (const [key, param] of command.params) {
    const value = given[key] ?? param.default;
    if (value === undefined)
      throw new WorkerError('bad_request', `The command "${name}" needs the parameter "${key}".`);
    if (typeof value !== 'string' || !paramAccepts(param, value)) {
      throw new WorkerError('bad_request', `The value of "${key}" is not one the command "${name}" accepts.`);
    }
    values.set(key, value);
  }
  return command.argv.map((arg, at) =>
    at === 0 ? arg : arg.replace(PLACEHOLDER, (_, key: string) => values.get(key) as string),
  );
}

/** Runs a command without a shell; kills it (SIGKILL) at its timeout or when `signal` aborts. */
function run(name: string, command: ExecCommand, argv: string[], signal: AbortSignal): Promise<ExecResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), {
      shell: false,
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: command.cwd,
      env: command.env ? { ...process.env, ...command.env } : process.env,
      windowsHide: true,
    });
    const output = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    let kept = 0;
    let truncated = false;
    let timedOut = false;
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      // Past the cap the output is still read (so the command is not blocked on a full pipe) but dropped.
      const room = command.maxOutputBytes - kept;
      if (room <= 0) {
        truncated = true;
        return;
      }
      if (chunk.length > room) truncated = true;
      into.push(chunk.subarray(0, room));
      kept += Math.min(room, chunk.length);
    };
    child.stdout.on('data', collect(output.stdout));
    child.stderr.on('data', collect(output.stderr));
    const kill = () => child.kill('SIGKILL');
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, command.timeoutMs);
    signal.addEventListener('abort', kill, { once: true });
    child.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', kill);
      reject(new WorkerError('failed', `The command "${name}" could not start (${error.code}).`));
    });
    child.once('close', (exitCode, exitSignal) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', kill);
      resolve({
        name,
        exitCode,
        signal: exitSignal,
        stdout: Buffer.concat(output.stdout).toString('utf8'),
        stderr: Buffer.concat(output.stderr).toString('utf8'),
        truncated,
        timedOut,
        durationMs: Math.round(performance.now() - started),
      });
    });
  });
}

/** The command receiver of one worker. */
export interface ExecReceiver {
  readonly names: readonly string[];
  /** Each command with the form of its parameters, for the users it is granted to (`urn:deadrop:info`). */
  describe(): { name: string; params: OfferedParam[] }[];
  /** Runs the command `name` with `params`; throws a WorkerError for an unknown command or a bad value. */
  run(name: unknown, params: unknown, signal: AbortSignal): Promise<ExecResult>;
}

export function createExecReceiver(config: ExecConfig): ExecReceiver {
  return {
    names: [...config.commands.keys()],
    describe: () =>
      [...config.commands].map(([name, command]) => ({
        name,
        params: [...command.params].map(([param, spec]) => ({
          name: param,
          ...(spec.pattern && { pattern: spec.pattern.source.replace(/^\^\(\?:([\s\S]*)\)\$$/, '$1') }),
          ...(spec.values && { values: spec.values }),
          ...(spec.default !== undefined && { default: spec.default }),
        })),
      })),
    run(name, params, signal) {
      const command = typeof name === 'string' ? config.commands.get(name) : undefined;
      if (!command)
        throw new WorkerError('not_found', `The worker has no command named ${JSON.stringify(name)}.`);
      return run(name as string, command, buildArgv(name as string, command, params), signal);
    },
  };
}
