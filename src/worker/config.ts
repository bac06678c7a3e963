// worker.yml: the relay, the key file, the fingerprint, the receivers and the users, checked at start.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { fromBase64url } from '../../sdk/e2e/encoding.js';
import type { FsOperation } from '../../sdk/e2e/protocol.js';
import {
  createFields,
  duration,
  type Fields,
  grantList,
  integer,
  isRecord,
  section,
  shown,
  text,
  textList,
  WorkerConfigError,
} from './config-fields.js';
import {
  type ExecConfig,
  type FsConfig,
  readExecConfig,
  readFsConfig,
  readWolConfig,
  type WolConfig,
} from './receiver-config.js';

export { WorkerConfigError } from './config-fields.js';

/** A user and what they may use: the receivers' operations, commands and targets named in `allow`. */
export interface UserGrant {
  name: string;
  /** The user's Ed25519 public key, base64url, as `deadrop user init` prints it. */
  key: string;
  fs: Set<FsOperation>;
  exec: Set<string>;
  wol: Set<string>;
}

/** The checked worker.yml. */
export interface WorkerConfig {
  /** Base URLs of one relay instance (the SDK fails over between them); the first one is in the address. */
  relays: string[];
  keyFile: string;
  fingerprint: { level: number; length: number };
  /** How requests arrive: long-poll (`drain({wait: 60})`) or server-sent events. */
  intake: 'longpoll' | 'sse';
  reconnect: { minMs: number; maxMs: number };
  /** Requests carried out at once; more wait their turn. */
  concurrency: number;
  receivers: { fs?: FsConfig; exec?: ExecConfig; wol?: WolConfig };
  /** By base64url public key. */
  users: Map<string, UserGrant>;
}

/** Deadbox's defaults: 2^21 hashes (a second or two, once) make an 8-pair id costly to imitate. */
const DEFAULT_LEVEL = 21;
const DEFAULT_LENGTH = 8;
/** Above this the one-time search for the id takes minutes. */
const MAX_LEVEL = 28;
/** First retry soon (a relay restart), then back off to a minute so a long outage costs next to nothing. */
const DEFAULT_RECONNECT_MIN_MS = 500;
const DEFAULT_RECONNECT_MAX_MS = 60_000;
const DEFAULT_CONCURRENCY = 8;

const TOP_LEVEL = [
  'relay',
  'keyFile',
  'fingerprint',
  'intake',
  'reconnect',
  'concurrency',
  'receivers',
  'auth',
];

function readRelays(fields: Fields, raw: unknown): string[] {
  const list = textList(fields, 'relay', raw);
  if (!list || list.length === 0) {
    fields.problem(
      'relay',
      'must be the relay\'s URL, such as "https://relay.example", or a list of its URLs.',
    );
    return [];
  }
  return list.flatMap((url) => {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.search || parsed.hash) {
      fields.problem(
        'relay',
        `must hold http:// or https:// URLs without "?" or "#", but it holds "${url}".`,
      );
      return [];
    }
    return [parsed.href.replace(/\/+$/, '')];
  });
}

function readUsers(
  fields: Fields,
  raw: unknown,
  receivers: WorkerConfig['receivers'],
): Map<string, UserGrant> {
  const users = new Map<string, UserGrant>();
  if (raw === undefined || raw === null) return users;
  if (!Array.isArray(raw)) {
    fields.problem('auth', 'must be a list of users, each with "name", "key" and "allow".');
    return users;
  }
  const offered = {
    fs: receivers.fs?.operations ?? [],
    exec: [...(receivers.exec?.commands.keys() ?? [])],
    wol: [...(receivers.wol?.targets.keys() ?? [])],
  };
  raw.forEach((entry, index) => {
    const where = `auth[${index}]`;
    const user = section(fields, where, entry, ['name', 'key', 'allow']);
    const name = text(fields, `${where}.name`, user.name) ?? `user ${index + 1}`;
    const key = text(fields, `${where}.key`, user.key);
    let keyBytes: Uint8Array | undefined;
    try {
      keyBytes = key === undefined ? undefined : fromBase64url(key);
    } catch {
      keyBytes = undefined;
    }
    if (keyBytes?.length !== 32) {
      fields.problem(
        `${where}.key`,
        `must be a user's public key as "deadrop user init" prints it, but it is ${shown(user.key)}.`,
      );
      return;
    }
    if (users.has(key as string))
      fields.problem(`${where}.key`, `is also the key of "${users.get(key as string)?.name}".`);
    const allow = section(fields, `${where}.allow`, user.allow, ['fs', 'exec', 'wol']);
    users.set(key as string, {
      name,
      key: key as string,
      fs: grantList(fields, `${where}.allow.fs`, allow.fs, offered.fs, 'the operation') as Set<FsOperation>,
      exec: grantList(fields, `${where}.allow.exec`, allow.exec, offered.exec, 'the command'),
      wol: grantList(fields, `${where}.allow.wol`, allow.wol, offered.wol, 'the target'),
    });
  });
  return users;
}

/** Checks a parsed worker.yml; `base` is the directory relative paths are resolved from. */
export async function checkWorkerConfig(raw: unknown, base: string, file: string): Promise<WorkerConfig> {
  const fields = createFields();
  if (!isRecord(raw)) {
    throw new WorkerConfigError(file, [`The file must be a mapping of settings (${TOP_LEVEL.join(', ')}).`]);
  }
  const top = section(fields, '(top level)', raw, TOP_LEVEL);
  const relays = readRelays(fields, top.relay);
  const fingerprint = section(fields, 'fingerprint', top.fingerprint, ['level', 'length']);
  const reconnect = section(fields, 'reconnect', top.reconnect, ['min', 'max']);
  const intake = text(fields, 'intake', top.intake) ?? 'longpoll';
  if (intake !== 'longpoll' && intake !== 'sse')
    fields.problem('intake', `must be "longpoll" or "sse", but it is "${intake}".`);
  const rawReceivers = section(fields, 'receivers', top.receivers, ['fs', 'exec', 'wol']);
  const receivers: WorkerConfig['receivers'] = {};
  if (rawReceivers.fs != null) receivers.fs = await readFsConfig(fields, rawReceivers.fs, base);
  if (rawReceivers.exec != null) receivers.exec = readExecConfig(fields, rawReceivers.exec, base);
  if (rawReceivers.wol != null) receivers.wol = readWolConfig(fields, rawReceivers.wol);
  if (Object.keys(receivers).length === 0) {
    fields.problem('receivers', 'must enable at least one receiver: fs, exec or wol.');
  }
  const users = readUsers(fields, top.auth, receivers);
  if (users.size === 0) {
    fields.problem('auth', 'must list at least one user key (run "deadrop user init" to make one).');
  }
  const config: WorkerConfig = {
    relays,
    keyFile: resolve(base, text(fields, 'keyFile', top.keyFile) ?? 'worker-key.json'),
    fingerprint: {
      level: integer(fields, 'fingerprint.level', fingerprint.level, DEFAULT_LEVEL, 0, MAX_LEVEL),
      length: integer(fields, 'fingerprint.length', fingerprint.length, DEFAULT_LENGTH, 4, 16),
    },
    intake: intake === 'sse' ? 'sse' : 'longpoll',
    reconnect: {
      minMs: duration(fields, 'reconnect.min', reconnect.min, DEFAULT_RECONNECT_MIN_MS, 600_000),
      maxMs: duration(fields, 'reconnect.max', reconnect.max, DEFAULT_RECONNECT_MAX_MS, 3_600_000),
    },
    concurrency: integer(fields, 'concurrency', top.concurrency, DEFAULT_CONCURRENCY, 1, 256),
    receivers,
    users,
  };
  if (fields.problems.length > 0) throw new WorkerConfigError(file, fields.problems);
  return config;
}

/** Reads and checks worker.yml; throws a WorkerConfigError listing every problem. */
export async function loadWorkerConfig(file: string): Promise<WorkerConfig> {
  const path = resolve(file);
  let source: string;
  try {
    source = await readFile(path, 'utf8');
  } catch (error) {
    throw new WorkerConfigError(file, [
      `The file cannot be read (${(error as NodeJS.ErrnoException).code}).`,
    ]);
  }
  let raw: unknown;
  try {
    raw = parse(source);
  } catch (error) {
    throw new WorkerConfigError(file, [
      `The file is not valid YAML: ${(error as Error).message.split('\n')[0]}`,
    ]);
  }
  return checkWorkerConfig(raw, dirname(path), file);
}
