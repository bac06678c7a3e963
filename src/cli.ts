#!/usr/bin/env node
// The `deadrop` command: `serve` runs the relay, `keys` asks a relay for a key pair.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { startRelay } from './server.js';

const USAGE = `Usage: deadrop <command> [options]

Commands:
  serve   Run the relay (settings from the environment; see .env.example)
  keys    Ask a relay for a new key pair and print it
  worker  Run a worker that answers encrypted requests through a relay (--config worker.yml)
  call    Send an encrypted request to a worker and print its answer
  user    Make the user key pair a worker's auth list names (user init)
  drop    Send or fetch an encrypted file that burns after reading

Run "deadrop <command> --help" for a command's options.`;

const SERVE_USAGE = `Usage: deadrop serve

Runs the relay on PORT (8080) with the store DEADROP_STORE names: sqlite (the default, in
DEADROP_DATA_DIR, ./data), redis (REDIS_URL) or memory. Every setting is an environment
variable; .env.example lists them all.`;

const KEYS_USAGE = `Usage: deadrop keys [--relay <url>] [--json]

Asks a relay for a new key pair and prints it. Keep the private key secret: whoever holds
it owns both paths.

Options:
  --relay <url>  The relay to ask (default: $DEADROP_URL or http://localhost:8080)
  --json         Print {"private","public"} as JSON`;

/** Starts the relay; resolves with no exit code, since it serves until a signal. */
async function serve(args: string[]): Promise<number | undefined> {
  const { values } = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(SERVE_USAGE);
    return 0;
  }
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(
      `deadrop: the configuration is not valid:\n${error.problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    return 1;
  }
  const relay = await startRelay(config);
  relay.logger.info(
    { url: relay.url, store: config.store, ...(relay.metricsUrl && { metrics: relay.metricsUrl }) },
    `deadrop relay listening on ${relay.url}`,
  );
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      relay.logger.warn({ signal }, 'second signal: cutting every connection now');
      void relay.shutdown();
      return;
    }
    stopping = true;
    relay.logger.info(
      { signal, graceSeconds: config.shutdownGraceMs / 1000 },
      'shutting down: no new connections; long-polls and event streams end; pipe transfers may finish within the grace period (DEADROP_SHUTDOWN_GRACE)',
    );
    // The process waits for its shutdown even where what the shutdown awaits does not hold the event loop
    // (the SQLite store's last checkpoint runs on an unref'd thread); the log's last lines are flushed.
    const holdOpen = setInterval(() => {}, 60_000);
    const exit = (code: number) => {
      clearInterval(holdOpen);
      relay.logger.flush(() => process.exit(code));
    };
    relay.shutdown().then(
      () => {
        relay.logger.info('stopped');
        exit(0);
      },
      (error: unknown) => {
        relay.logger.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return undefined;
}

async function keys(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { help: { type: 'boolean', short: 'h' }, relay: { type: 'string' }, json: { type: 'boolean' } },
  });
  if (values.help) {
    console.log(KEYS_USAGE);
    return 0;
  }
  const relay = (values.relay ?? process.env.DEADROP_URL ?? 'http://localhost:8080').replace(/\/+$/, '');
  let response: Response;
  try {
    response = await fetch(`${relay}/keys`);
  } catch (error) {
    console.error(`deadrop: could not reach the relay at ${relay}: ${(error as Error).cause ?? error}`);
    return 1;
  }
  if (!response.ok) {
    console.error(`deadrop: ${relay}/keys answered ${response.status}: ${await response.text()}`);
    return 1;
  }
  const pair = (await response.json()) as { private: string; public: string };
  if (values.json) console.log(JSON.stringify(pair));
  else
    console.log(
      `private: ${pair.private}  (secret: whoever holds it owns the pair)\npublic:  ${pair.public}`,
    );
  return 0;
}

async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  try {
    if (command === 'serve') return await serve(rest);
    if (command === 'keys') return await keys(rest);
    // The other commands load their modules only when used, so `serve` starts without them.
    if (command === 'worker') return await (await import('./worker/cli.js')).runWorkerCommand(rest);
    if (command === 'call') return await (await import('./worker/cli.js')).runCallCommand(rest);
    if (command === 'user') return await (await import('./worker/cli.js')).runUserCommand(rest);
    if (command === 'drop') return await (await import('./drop/cli.js')).runDropCommand(rest);
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`deadrop: ${(error as Error).message}`);
      return 2;
    }
    throw error;
  }
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  console.error(`deadrop: unknown command "${command}"\n\n${USAGE}`);
  return 2;
}

const exitCode = await main(process.argv.slice(2));
if (exitCode !== undefined) process.exitCode = exitCode;
