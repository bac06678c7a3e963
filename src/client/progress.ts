// The transfer progress bar of `deadrop call` (cli-progress on stderr): bytes, rate and time left.
import type { Writable } from 'node:stream';
import { Presets, SingleBar } from 'cli-progress';
import { formatBytes } from './format.js';
import type { TransferProgress } from './transfers.js';

/** A progress bar that can be stopped; a no-op one when `enabled` is false. */
export interface ProgressBar extends TransferProgress {
  stop(): void;
}

/** A bar labelled `label` on `stream`, drawn even when it is not a terminal (for `--progress`). */
export function createProgressBar(label: string, stream: Writable, enabled: boolean): ProgressBar {
  if (!enabled) return { start() {}, update() {}, stop() {} };
  const bar = new SingleBar(
    {
      stream: stream as NodeJS.WritableStream,
      format: `${label} [{bar}] {percentage}% | {done} of {size} | {rate} | ETA {eta_formatted}`,
      hideCursor: true,
      fps: 10,
      etaBuffer: 40,
      noTTYOutput: true,
      notTTYSchedule: 1000,
    },
    Presets.shades_classic,
  );
  let startedAt = 0;
  let total = 0;
  const payload = (done: number) => {
    const seconds = (performance.now() - startedAt) / 1000;
    return {
      done: formatBytes(done),
      size: formatBytes(total),
      rate: `${formatBytes(seconds > 0 ? done / seconds : 0)}/s`,
    };
  };
  return {
    start(size) {
      total = size;
      startedAt = performance.now();
      bar.start(size, 0, payload(0));
    },
    update(done) {
      bar.update(done, payload(done));
    },
    stop() {
      bar.stop();
    },
  };
}
