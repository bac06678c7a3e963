// The CLI's terminal: progress bars in bytes on stderr, and passwords read without echo (or as one line of stdin).
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { SingleBar } from 'cli-progress';

const MIB = 1024 * 1024;

/** The streams a drop command talks to; process's own by default. */
export interface DropIo {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean };
  env: Record<string, string | undefined>;
  cwd: string;
  /** Aborts the command (Ctrl-C): an upload is withdrawn, a fetch keeps what it has to resume. */
  signal?: AbortSignal;
}

/** A progress bar of `total` bytes; it draws only on a terminal, so piped output stays clean. */
export function createProgress(io: DropIo, label: string, total: number) {
  const bar = new SingleBar({
    stream: io.stderr as NodeJS.WritableStream,
    format: `${label} [{bar}] {percentage}% | {done}/{size} MiB | {rate} MB/s | ETA {eta_formatted}`,
    hideCursor: true,
    barsize: 30,
    etaBuffer: 50,
  });
  const started = performance.now();
  // A 0-byte file still shows a bar that fills.
  const scale = Math.max(1, total);
  const payload = (bytes: number) => ({
    done: (bytes / MIB).toFixed(1),
    size: (total / MIB).toFixed(1),
    rate: (bytes / 1e6 / Math.max(0.001, (performance.now() - started) / 1000)).toFixed(0),
  });
  bar.start(scale, 0, payload(0));
  return {
    update: (bytes: number) => bar.update(total === 0 ? 0 : bytes, payload(bytes)),
    stop: (bytes: number) => {
      bar.update(total === 0 ? scale : bytes, payload(bytes));
      bar.stop();
    },
  };
}

/** Reads a password without echo on a terminal (Ctrl-C rejects). */
function promptHidden(io: DropIo, question: string): Promise<string> {
  const { stdin } = io;
  io.stderr.write(question);
  return new Promise((resolve, reject) => {
    let password = '';
    const finish = (error?: Error) => {
      stdin.setRawMode?.(false);
      stdin.pause();
      stdin.off('data', onData);
      io.stderr.write('\n');
      if (error) reject(error);
      else resolve(password);
    };
    const onData = (text: string) => {
      for (const char of text) {
        if (char === '\r' || char === '\n') return finish();
        if (char === '\u0003') return finish(new Error('Cancelled.'));
        if (char === '\u007f' || char === '\b') password = password.slice(0, -1);
        else password += char;
      }
    };
    stdin.setRawMode?.(true);
    stdin.setEncoding('utf8');
    stdin.on('data', onData);
    stdin.resume();
  });
}

/** The first line of a stdin that is not a terminal (`echo "$PW" | deadrop drop send f --password`). */
async function firstLine(stdin: Readable): Promise<string> {
  const lines = createInterface({ input: stdin });
  for await (const line of lines) {
    lines.close();
    return line;
  }
  return '';
}

/**
 * A password from $DEADROP_PASSWORD, else asked on the terminal (twice when `confirm`), else the first
 * line of stdin. Empty is refused: a drop without a password is sent without `--password`.
 */
export async function readPassword(io: DropIo, question: string, confirm = false): Promise<string> {
  let password = io.env.DEADROP_PASSWORD;
  if (password === undefined) {
    if (io.stdin.isTTY) {
      password = await promptHidden(io, question);
      if (confirm && (await promptHidden(io, 'Again: ')) !== password) {
        throw new Error('The two passwords differ.');
      }
    } else {
      password = await firstLine(io.stdin);
    }
  }
  if (!password) throw new Error('The password is empty.');
  return password;
}
