// The receivers' sections of worker.yml (fs, exec, wol): each is enabled only when present, and checked at start.
import { stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { FS_OPERATIONS, type FsOperation } from '../../sdk/e2e/protocol.js';
import {
  duration,
  type Fields,
  integer,
  isRecord,
  mapping,
  section,
  shown,
  size,
  text,
  textList,
} from './config-fields.js';

/** The file receiver: named roots, patterns, operations and the caps on results. */
export interface FsConfig {
  /** Root name → absolute directory; a request path starts with the root's name: `/<root>/…`. */
  roots: Map<string, string>;
  include: string[];
  exclude: string[];
  operations: FsOperation[];
  /** Entries a list, find or grep answers at most. */
  maxResults: number;
  /** Directory entries a find or grep looks at, at most. */
  maxVisited: number;
  /** Files larger than this are not searched by content. */
  maxSearchFileBytes: number;
  maxUploadBytes: number;
}

/** A command parameter: a text that must match `pattern` or be one of `values`. */
export interface ExecParam {
  pattern?: RegExp;
  values?: string[];
  default?: string;
}

/** A named command: a fixed argv whose `{param}` placeholders take validated values. */
export interface ExecCommand {
  argv: string[];
  params: Map<string, ExecParam>;
  timeoutMs: number;
  maxOutputBytes: number;
  cwd?: string;
  env?: Record<string, string>;
}

export interface ExecConfig {
  commands: Map<string, ExecCommand>;
}

export interface WolTarget {
  mac: Buffer;
  address: string;
  port: number;
}

export interface WolConfig {
  targets: Map<string, WolTarget>;
}

/** Read-only unless the config says more: changing files is a choice the operator writes down. */
const DEFAULT_FS_OPERATIONS: FsOperation[] = ['list', 'stat', 'find', 'grep', 'download'];
const DEFAULT_MAX_RESULTS = 1000;
const DEFAULT_MAX_VISITED = 100_000;
const DEFAULT_MAX_SEARCH_FILE_BYTES = 8 * 1024 ** 2;
const DEFAULT_MAX_UPLOAD_BYTES = 16 * 1024 ** 3;
const DEFAULT_EXEC_TIMEOUT_MS = 30_000;
const MAX_EXEC_TIMEOUT_MS = 3_600_000;
/** Enough for a status report; more would go out in many answer parts. */
const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024;
const MAX_OUTPUT_BYTES = 1024 * 1024;
/** The usual wake-on-LAN port ("discard") on the local broadcast address. */
const DEFAULT_WOL_ADDRESS = '255.255.255.255';
const DEFAULT_WOL_PORT = 9;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** `{name}` in an argv element, replaced by the parameter's checked value. */
export const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const MAC = /^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i;

/** Checks the `fs` section; `base` is the config file's directory, for relative roots. */
export async function readFsConfig(fields: Fields, raw: unknown, base: string): Promise<FsConfig> {
  const path = 'receivers.fs';
  const known = [
    'roots',
    'include',
    'exclude',
    'operations',
    'maxResults',
    'maxVisited',
    'maxSearchFileSize',
    'maxUploadSize',
  ];
  const fs = section(fields, path, raw, known);
  const roots = new Map<string, string>();
  if (!isRecord(fs.roots) || Object.keys(fs.roots).length === 0) {
    fields.problem(
      `${path}.roots`,
      'must name at least one directory, such as "roots: { docs: /home/me/docs }".',
    );
  } else {
    for (const [name, dir] of Object.entries(fs.roots)) {
      const where = `${path}.roots.${name}`;
      if (!NAME.test(name)) {
        fields.problem(where, 'is not a usable root name: use letters, digits, ".", "_" and "-".');
        continue;
      }
      const dirText = text(fields, where, dir);
      if (dirText === undefined) continue;
      const absolute = resolve(base, dirText);
      const info = await stat(absolute).catch(() => undefined);
      if (!info?.isDirectory())
        fields.problem(where, `must be an existing directory, but ${absolute} is not.`);
      else roots.set(name, absolute);
    }
  }
  const operations = textList(fields, `${path}.operations`, fs.operations) ?? DEFAULT_FS_OPERATIONS;
  for (const operation of operations) {
    if (!FS_OPERATIONS.includes(operation as FsOperation)) {
      fields.problem(
        `${path}.operations`,
        `names "${operation}", which is not an operation; they are ${FS_OPERATIONS.join(', ')}.`,
      );
    }
  }
  return {
    roots,
    include: textList(fields, `${path}.include`, fs.include) ?? ['**'],
    exclude: textList(fields, `${path}.exclude`, fs.exclude) ?? [],
    operations: operations.filter((op): op is FsOperation => FS_OPERATIONS.includes(op as FsOperation)),
    maxResults: integer(fields, `${path}.maxResults`, fs.maxResults, DEFAULT_MAX_RESULTS, 1, 100_000),
    maxVisited: integer(fields, `${path}.maxVisited`, fs.maxVisited, DEFAULT_MAX_VISITED, 1, 10_000_000),
    maxSearchFileBytes: size(
      fields,
      `${path}.maxSearchFileSize`,
      fs.maxSearchFileSize,
      DEFAULT_MAX_SEARCH_FILE_BYTES,
    ),
    maxUploadBytes: size(fields, `${path}.maxUploadSize`, fs.maxUploadSize, DEFAULT_MAX_UPLOAD_BYTES),
  };
}

function readParam(fields: Fields, where: string, raw: unknown): ExecParam | undefined {
  const spec = section(fields, where, raw, ['pattern', 'enum', 'default']);
  const param: ExecParam = {};
  const pattern = text(fields, `${where}.pattern`, spec.pattern);
  if (pattern !== undefined) {
    try {
      // Anchored here, so that "[a-z]+" cannot pass "rm -rf" because part of it matches.
      param.pattern = new RegExp(`^(?:${pattern})$`, 'u');
    } catch (error) {
      fields.problem(`${where}.pattern`, `is not a valid regular expression: ${(error as Error).message}.`);
    }
  }
  const values = textList(fields, `${where}.enum`, spec.enum);
  if (values) param.values = values;
  if (pattern === undefined && values === undefined) {
    fields.problem(where, 'needs a "pattern" or an "enum": a parameter is never free text.');
    return undefined;
  }
  const fallback = text(fields, `${where}.default`, spec.default);
  if (fallback !== undefined) {
    if (!paramAccepts(param, fallback))
      fields.problem(`${where}.default`, 'does not pass its own pattern or enum.');
    param.default = fallback;
  }
  return param;
}

/** Whether `value` passes the parameter's pattern and enum. */
export function paramAccepts(param: ExecParam, value: string): boolean {
  return (param.pattern?.test(value) ?? true) && (param.values?.includes(value) ?? true);
}

/** Checks the `exec` section; `base` is the config file's directory, for relative working directories. */
export function readExecConfig(fields: Fields, raw: unknown, base: string): ExecConfig {
  const path = 'receivers.exec';
  const exec = section(fields, path, raw, ['commands']);
  const commands = new Map<string, ExecCommand>();
  if (!isRecord(exec.commands) || Object.keys(exec.commands).length === 0) {
    fields.problem(
      `${path}.commands`,
      'must name at least one command, such as "uptime: { argv: [uptime] }".',
    );
    return { commands };
  }
  for (const [name, rawCommand] of Object.entries(exec.commands)) {
    const where = `${path}.commands.${name}`;
    if (!NAME.test(name))
      fields.problem(where, 'is not a usable command name: use letters, digits, ".", "_" and "-".');
    const spec = section(fields, where, rawCommand, ['argv', 'params', 'timeout', 'maxOutput', 'cwd', 'env']);
    const argv = textList(fields, `${where}.argv`, spec.argv);
    if (!argv || argv.length === 0 || typeof spec.argv === 'string') {
      fields.problem(`${where}.argv`, 'must be a list: the program, then its arguments (no shell is used).');
      continue;
    }
    const params = new Map<string, ExecParam>();
    for (const [paramName, rawParam] of Object.entries(mapping(fields, `${where}.params`, spec.params))) {
      const param = readParam(fields, `${where}.params.${paramName}`, rawParam);
      if (param) params.set(paramName, param);
    }
    const used = new Set(argv.slice(1).flatMap((arg) => [...arg.matchAll(PLACEHOLDER)].map((m) => m[1])));
    if ((argv[0] as string).match(PLACEHOLDER)) {
      fields.problem(
        `${where}.argv`,
        'must start with a fixed program: its first element may not hold a {placeholder}.',
      );
    }
    for (const placeholder of used) {
      if (!params.has(placeholder as string)) {
        fields.problem(
          `${where}.argv`,
          `uses {${placeholder}}, but "params" does not define "${placeholder}".`,
        );
      }
    }
    for (const paramName of params.keys()) {
      if (!used.has(paramName)) fields.problem(`${where}.params.${paramName}`, 'is not used in argv as {…}.');
    }
    const envEntries = Object.entries(mapping(fields, `${where}.env`, spec.env));
    for (const [key, value] of envEntries) {
      if (typeof value !== 'string')
        fields.problem(`${where}.env.${key}`, `must be a text, but it is ${shown(value)}.`);
    }
    const cwd = text(fields, `${where}.cwd`, spec.cwd);
    commands.set(name, {
      argv,
      params,
      timeoutMs: duration(
        fields,
        `${where}.timeout`,
        spec.timeout,
        DEFAULT_EXEC_TIMEOUT_MS,
        MAX_EXEC_TIMEOUT_MS,
      ),
      maxOutputBytes: Math.min(
        size(fields, `${where}.maxOutput`, spec.maxOutput, DEFAULT_MAX_OUTPUT_BYTES),
        MAX_OUTPUT_BYTES,
      ),
      ...(cwd !== undefined && { cwd: resolve(base, cwd) }),
      ...(envEntries.length > 0 && { env: Object.fromEntries(envEntries) as Record<string, string> }),
    });
  }
  return { commands };
}

/** The 6 bytes of a MAC address written as aa:bb:cc:dd:ee:ff, aa-bb-… or aabbccddeeff. */
export function parseMac(value: string): Buffer | undefined {
  return MAC.test(value) ? Buffer.from(value.replace(/[:-]/g, ''), 'hex') : undefined;
}

/** Checks the `wol` section. */
export function readWolConfig(fields: Fields, raw: unknown): WolConfig {
  const path = 'receivers.wol';
  const wol = section(fields, path, raw, ['address', 'port', 'targets']);
  const address = text(fields, `${path}.address`, wol.address) ?? DEFAULT_WOL_ADDRESS;
  if (isIP(address) !== 4)
    fields.problem(`${path}.address`, `must be an IPv4 broadcast address, but it is "${address}".`);
  const port = integer(fields, `${path}.port`, wol.port, DEFAULT_WOL_PORT, 1, 65_535);
  const targets = new Map<string, WolTarget>();
  if (!isRecord(wol.targets) || Object.keys(wol.targets).length === 0) {
    fields.problem(`${path}.targets`, 'must name at least one machine, such as "nas: aa:bb:cc:dd:ee:ff".');
    return { targets };
  }
  for (const [name, rawTarget] of Object.entries(wol.targets)) {
    const where = `${path}.targets.${name}`;
    const spec = isRecord(rawTarget)
      ? section(fields, where, rawTarget, ['mac', 'address', 'port'])
      : { mac: rawTarget };
    const macText = text(fields, `${where}${isRecord(rawTarget) ? '.mac' : ''}`, spec.mac);
    const mac = macText === undefined ? undefined : parseMac(macText);
    if (!mac) {
      fields.problem(where, `needs a MAC address such as "aa:bb:cc:dd:ee:ff", but it is ${shown(spec.mac)}.`);
      continue;
    }
    const targetAddress = text(fields, `${where}.address`, spec.address) ?? address;
    if (isIP(targetAddress) !== 4)
      fields.problem(`${where}.address`, `must be an IPv4 address, but it is "${targetAddress}".`);
    targets.set(name, {
      mac,
      address: targetAddress,
      port: integer(fields, `${where}.port`, spec.port, port, 1, 65_535),
    });
  }
  return { targets };
}
