// `deadrop user init` (and `show`): the user's key pair, whose public key goes into a worker's auth list.
import { parseArgs } from 'node:util';
import { toBase64url } from '../../sdk/e2e/encoding.js';
import type { CommandIo } from './call-command.js';
import { processIo } from './call-command.js';
import { createUserKeyFile, defaultUserKeyFile, loadUserKeys } from './user-keys.js';

export const USER_USAGE = `Usage: deadrop user <init|show> [--key <file>] [--force]

  init   Make your key pair (Ed25519) and print its public key. Give the public key to the
         owner of a worker, who adds it to the worker's "auth" list.
  show   Print the public key of your key pair again.

Options:
  --key <file>  Where the key pair is kept (default ~/.config/deadrop/user.json, mode 0600)
  --force       init: replace an existing key pair (workers will no longer know you)`;

/** `deadrop user`: answers the exit code (0 done, 1 failed, 2 usage). */
export async function runUser(args: string[], io: CommandIo = processIo()): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (error) {
    io.stderr.write(`deadrop user: ${(error as Error).message}\n\n${USER_USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(`${USER_USAGE}\n`);
    return 0;
  }
  const [action] = positionals;
  const file = values.key ?? defaultUserKeyFile();
  try {
    if (action === 'init' && positionals.length === 1) {
      const publicKey = await createUserKeyFile(file, values.force === true);
      io.stdout.write(`${publicKey}\n`);
      io.stderr.write(
        `Your key pair is in ${file} (keep it private). Give the public key above to a worker's owner, who adds\n` +
          `  - name: <you>\n    key: ${publicKey}\n    allow: { fs: [list, download] }\nto the "auth" list of its worker.yml.\n`,
      );
      return 0;
    }
    if (action === 'show' && positionals.length === 1) {
      io.stdout.write(`${toBase64url((await loadUserKeys(file)).publicKey)}\n`);
      return 0;
    }
  } catch (error) {
    io.stderr.write(`deadrop user: ${(error as Error).message}\n`);
    return 1;
  }
  io.stderr.write(`deadrop user: say "init" or "show".\n\n${USER_USAGE}\n`);
  return 2;
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      key: { type: 'string' },
      force: { type: 'boolean' },
    },
  });
}
