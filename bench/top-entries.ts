// The functions with the most self time in a .cpuprofile (from node --cpu-prof), for the benchmarks' reports.
import { readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/** The functions with the most self time in a .cpuprofile, as shares of the time the process was busy. */
export function topEntries(file: string, count: number): string[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: ProfileNode[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, at) => {
    const frame = byId.get(id)?.callFrame;
    if (!frame) return;
    const where = frame.url
      ? `${frame.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*\/(src|sdk)\//, '$1/')}:${frame.lineNumber + 1}`
      : '';
    const name = `${frame.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    const delta = profile.timeDeltas[at] ?? 0;
    // Waiting is not work: shares are of the time the process was busy.
    if (frame.functionName === '(idle)') return;
    total += delta;
    self.set(name, (self.get(name) ?? 0) + delta);
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, micros]) => `${((100 * micros) / total).toFixed(1).padStart(5)}%  ${name}`);
}

/** The largest profile in `dir` (a process's main thread; workers write smaller ones), or undefined. */
export async function mainProfileIn(dir: string): Promise<string | undefined> {
  const files = (await readdir(dir).catch(() => [])).filter((file) => file.endsWith('.cpuprofile'));
  const sizes = await Promise.all(files.map(async (file) => (await stat(join(dir, file))).size));
  const largest = files[sizes.indexOf(Math.max(...sizes))];
  return largest === undefined ? undefined : join(dir, largest);
}
