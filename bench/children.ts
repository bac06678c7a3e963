// Servers under test as child processes on 127.0.0.1: free ports, readiness, and stopping every one of them.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;

/** Every child still running, so that an error or a signal can stop them all. */
const running = new Set<ChildProcess>();

export interface Child {
  readonly url: string;
  /** CPU time (user + system) the child has used so far, in ms, from /proc: contention does not inflate it. */
  cpuMs(): Promise<number>;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ: 100 on Linux). */
const CLOCK_TICKS = 100;

async function cpuMsOf(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at ")"; utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** A port free a moment ago: PORT=0 would work, but the relay does not report the port it got. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port was assigned');
  return address.port;
}

const isRunning = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

async function stopChild(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(STOP_GRACE_MS)]);
  if (isRunning(child)) {
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Runs `node <args>` with PORT set to a free port and resolves once GET `readyPath` answers 2xx.
 * Only the environment given is passed on (plus PATH and HOME), so stray DEADROP_* settings cannot leak in.
 */
export async function startChild(
  name: string,
  args: string[],
  env: Record<string, string>,
  readyPath: string,
  cwd: string,
): Promise<Child> {
  const port = await freePort();
  const child = spawn(process.execPath, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (!isRunning(child)) {
      throw new Error(`${name} exited (code ${child.exitCode}) before it was ready:\n${stderr}`);
    }
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`${name} was not ready within ${READY_TIMEOUT_MS} ms:\n${stderr}`);
    }
    try {
      const response = await fetch(url + readyPath, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.ok) break;
    } catch {
      // Not listening yet.
    }
    await sleep(50);
  }
  return { url, pid: child.pid as number, cpuMs: () => cpuMsOf(child.pid), stop: () => stopChild(child) };
}

/** Stops every child still running: SIGTERM, then SIGKILL after a grace period. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map(stopChild));
}

// The last resort when the benchmark dies without reaching its cleanup: 'exit' handlers must be synchronous.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void stopAllChildren().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}
