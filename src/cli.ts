#!/usr/bin/env node
// The `deadrop` command: dispatches to each command's module, loaded only when that command runs.
import { parseArgs } from 'node:util';

const USAGE = `Usage: deadrop <command> [options]

Commands:
  serve   Run the relay (settings from the environment; see .env.example)
  keys    Ask a relay for a new key pair and print it
  worker  Run a worker that answers encrypted requests through a relay (--config worker.yml)
  call    Send an encrypted request to a worker and print its answer
  user    Make the user key pair a worker's auth list names (user init)
  drop    Send or fetch an encrypted file that burns after reading

Run "deadrop <command> --help" for a command's options, "deadrop --version" for the version.`;

const SERVE_USAGE = `Usage: deadrop serve

Runs the relay on PORT (8080) with the store DEADROP_STORE names: sqlite (the default, in
DEADROP_DATA_DIR, ./data), redis (REDIS_URL or REDIS_CLUSTER) or memory. Every setting is an environment
variable; .env.example lists them all.`;

const KEYS_USAGE = `Usage: deadrop keys [--relay <url>] [--json]

Asks a relay for a new key pair and prints it. Keep the private key secret: whoever holds
it owns both paths.

Options:
  --relay <url>   The relay to ask (default: $DEADROP_URL or http://localhost:8080)
  --json          Print {"private","public"} as JSON
  --timeout <s>   Seconds to wait for the relay (default 30)`;

/** Starts the relay; resolves with no exit code, since it serves until a signal. */
async function serve(args: string[]): Promise<number | undefined> {
  const { values } = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(SERVE_USAGE);
    return 0;
  }
  // Loaded here, not at the top: the other commands start without the relay's modules.
  const { ConfigError, loadConfig } = await import('./config.js');
  const { startRelay } = await import('./server.js');
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
  // Supervisors and scripts wait for the lines of start and stop: they go out at once, not with the next
  // chunk of the log.
  relay.logger.flush();
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      relay.logger.warn({ signal }, 'second signal: cutting every connection now');
      relay.logger.flush();
      void relay.shutdown();
      return;
    }
    stopping = true;
    relay.logger.info(
      { signal, graceSeconds: config.shutdownGraceMs / 1000 },
      'shutting down: no new connections; long-polls and event streams end; pipe transfers may finish within the grace period (DEADROP_SHUTDOWN_GRACE)',
    );
    relay.logger.flush();
    // The process waits for its shutdown even where what the shutdown awaits does not hold the event loop
    // (unreferenced timers and threads), then flushes the log's last lines.
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

/** Seconds `deadrop keys` waits for the relay by default. */
const DEFAULT_KEYS_TIMEOUT_SECONDS = 30;

async function keys(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      help: { type: 'boolean', short: 'h' },
      relay: { type: 'string' },
      json: { type: 'boolean' },
      timeout: { type: 'string' },
    },
  });
  if (values.help) {
    console.log(KEYS_USAGE);
    return 0;
  }
  const timeout = Number(values.timeout ?? DEFAULT_KEYS_TIMEOUT_SECONDS);
  if (!(timeout > 0)) {
    console.error('deadrop keys: --timeout takes a number of seconds.');
    return 2;
  }
  const { createClient } = await import('../sdk/index.js');
  const { describeRelayFailure, parseRelayUrl } = await import('./client/relay-errors.js');
  const { nodeFetch } = await import('./client/node-fetch.js');
  const given = values.relay ?? process.env.DEADROP_URL ?? 'http://localhost:8080';
  let pair: { private: string; public: string };
  try {
    pair = await createClient(parseRelayUrl(given), { fetch: nodeFetch }).keys({
      signal: AbortSignal.timeout(timeout * 1000),
    });
  } catch (error) {
    console.error(`deadrop keys: ${describeRelayFailure(error, given)}`);
    return 1;
  }
  if (values.json) console.log(JSON.stringify(pair));
  else
    console.log(
      `private: ${pair.private}  (secret: whoever holds it owns the pair)\npublic:  ${pair.public}`,
    );
  return 0;
}

async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-v') {
    console.log((await import('./package-root.js')).packageVersion());
    return 0;
  }
  try {
    if (command === 'serve') return await serve(rest);
    if (command === 'keys') return await keys(rest);
    // Each command loads its modules only when used, so that none waits for another's to load.
    if (command === 'worker') return await (await import('./worker/cli.js')).runWorkerCommand(rest);
    if (command === 'call') return await (await import('./client/call-command.js')).runCall(rest);
    if (command === 'user') return await (await import('./client/user-command.js')).runUser(rest);
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

/** Resolves once everything written to `stream` so far is handed to the system. */
const flushed = (stream: NodeJS.WriteStream) =>
  new Promise<void>((resolve) => stream.write('', () => resolve()));

const exitCode = await main(process.argv.slice(2));
// A command that is done exits at once: fetch keeps its connections to the relay open for a while, and
// the process would wait for them (a quarter of a second or more) before ending on its own.
if (exitCode !== undefined) {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(exitCode);
}
