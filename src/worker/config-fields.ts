// Readers of worker.yml values that collect one plain sentence per problem instead of stopping at the first.

/** Every problem found in worker.yml, one sentence each. */
export class WorkerConfigError extends Error {
  /**
   * @param file The config file.
   * @param problems One sentence per problem.
   */
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file} is not valid:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'WorkerConfigError';
  }
}

/** Collects problems while reading values; `path` names a setting as it is written in the file. */
export interface Fields {
  problems: string[];
  /** Adds a problem about the setting at `path`. */
  problem(path: string, sentence: string): void;
}

export function createFields(): Fields {
  const problems: string[] = [];
  return { problems, problem: (path, sentence) => problems.push(`"${path}" ${sentence}`) };
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** Shows a value in a sentence, cut short. */
export const shown = (value: unknown): string => {
  const text = typeof value === 'string' ? `"${value}"` : (JSON.stringify(value) ?? String(value));
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
};

/** The section at `path` as a record (an empty one when absent), with unknown settings reported. */
export function section(
  fields: Fields,
  path: string,
  value: unknown,
  known: readonly string[],
): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) {
    fields.problem(path, `must be a mapping of settings (${known.join(', ')}), but it is ${shown(value)}.`);
    return {};
  }
  for (const name of Object.keys(value)) {
    if (!known.includes(name)) {
      fields.problem(`${path}.${name}`, `is not a setting here; the settings are ${known.join(', ')}.`);
    }
  }
  return value;
}

/** A mapping of free names (roots, commands, parameters…) to values; an empty one when absent. */
export function mapping(fields: Fields, path: string, value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (isRecord(value)) return value;
  fields.problem(path, `must be a mapping of names to values, but it is ${shown(value)}.`);
  return {};
}

export function text(fields: Fields, path: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  fields.problem(path, `must be a text, but it is ${shown(value)}.`);
  return undefined;
}

export function textList(fields: Fields, path: string, value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const list = typeof value === 'string' ? [value] : value;
  if (Array.isArray(list) && list.every((item) => typeof item === 'string')) return list as string[];
  fields.problem(path, `must be a list of texts, but it is ${shown(value)}.`);
  return undefined;
}

export function integer(
  fields: Fields,
  path: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
  fields.problem(path, `must be a whole number from ${min} to ${max}, but it is ${shown(value)}.`);
  return fallback;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration in milliseconds: a number of seconds, or a text such as "500ms", "10s", "2m", "1h". */
export function duration(
  fields: Fields,
  path: string,
  value: unknown,
  fallbackMs: number,
  maxMs: number,
): number {
  if (value === undefined || value === null) return fallbackMs;
  const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/.exec(value.trim()) : undefined;
  const ms =
    typeof value === 'number'
      ? value * 1000
      : match
        ? Number(match[1]) * (DURATION_UNITS[match[2] as string] ?? 0)
        : Number.NaN;
  if (ms > 0 && ms <= maxMs) return Math.round(ms);
  fields.problem(
    path,
    `must be a duration such as "10s" or "500ms" (up to ${maxMs / 1000} s), but it is ${shown(value)}.`,
  );
  return fallbackMs;
}

const SIZE_UNITS: Record<string, number> = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** A size in bytes: a number, or a text such as "64KiB", "10MiB", "2GiB". */
export function size(fields: Fields, path: string, value: unknown, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  const match = typeof value === 'string' ? /^(\d+)\s*(b|kib|mib|gib)$/i.exec(value.trim()) : undefined;
  const bytes =
    typeof value === 'number'
      ? value
      : match
        ? Number(match[1]) * (SIZE_UNITS[(match[2] as string).toLowerCase()] ?? 0)
        : Number.NaN;
  if (Number.isSafeInteger(bytes) && bytes > 0) return bytes;
  fields.problem(path, `must be a size such as 65536, "64KiB" or "10MiB", but it is ${shown(value)}.`);
  return fallback;
}

/** `'*'` (everything) or a list of names, each of which must be in `known`. */
export function grantList(
  fields: Fields,
  path: string,
  value: unknown,
  known: readonly string[],
  what: string,
): Set<string> {
  if (value === undefined || value === null) return new Set();
  if (value === '*' || value === true) return new Set(known);
  const list = textList(fields, path, value);
  for (const name of list ?? []) {
    if (!known.includes(name)) {
      fields.problem(
        path,
        `names ${what} "${name}", which this worker does not offer; it offers ${known.join(', ') || 'none'}.`,
      );
    }
  }
  return new Set(list ?? []);
}
