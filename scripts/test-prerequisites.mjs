// What `npm test` needs besides node_modules: Debian's Chromium and a Redis. Provides what it can (apt-get
// as root, a redis-server for a loopback REDIS_URL); otherwise stops with one sentence per missing part.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';

const DEBIAN_CHROMIUM = '/usr/bin/chromium';
const chromium = process.env.CHROMIUM_PATH ?? DEBIAN_CHROMIUM;
const redisUrl = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const redisHost = redisUrl.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
const redisPort = Number(redisUrl.port || 6379);
const LOOPBACK = ['127.0.0.1', 'localhost', '::1'];

const say = (text) => console.error(`test-prerequisites: ${text}`);

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The command's path on PATH, or undefined. */
const onPath = (command) =>
  (process.env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, command))
    .find(isExecutable);

/** Installs a Debian package when we are root and apt-get is there; says whether it ran. */
function aptInstall(pkg) {
  if (process.getuid?.() !== 0 || !onPath('apt-get')) return false;
  say(`installing ${pkg} with apt-get…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const options = { env, stdio: ['ignore', 'ignore', 'inherit'] };
  spawnSync('apt-get', ['update', '-qq'], options);
  return spawnSync('apt-get', ['install', '-y', '-qq', pkg], options).status === 0;
}

/** Whether a Redis answers PING at the URL's host and port (a -NOAUTH answer is a Redis too). */
function redisAnswers() {
  return new Promise((resolve) => {
    const socket = connect({ host: redisHost, port: redisPort });
    const done = (answered) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(/^(\+PONG|-NOAUTH)/.test(data.toString())));
  });
}

async function untilRedisAnswers(timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await redisAnswers()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** Chromium for the page tests: never a downloaded browser, Debian's own. */
function ensureChromium() {
  if (isExecutable(chromium)) return undefined;
  if (chromium === DEBIAN_CHROMIUM && aptInstall('chromium') && isExecutable(chromium)) return undefined;
  return `npm test needs Chromium at ${chromium}: install Debian's (apt-get install chromium) or set CHROMIUM_PATH to one.`;
}

/** A Redis for the Redis store's tests: started here, without persistence, when it is local and not running. */
async function ensureRedis() {
  if (await redisAnswers()) return undefined;
  const failure = `npm test needs a Redis answering at ${redisUrl.href}: install one (apt-get install redis-server) or set REDIS_URL to one that runs.`;
  if (!LOOPBACK.includes(redisHost)) return failure;
  if (!onPath('redis-server') && !aptInstall('redis-server')) return failure;
  // apt-get may have started one already.
  if (await redisAnswers()) return undefined;
  const bind = redisHost === '::1' ? '::1' : '127.0.0.1';
  say(`starting redis-server on ${bind} port ${redisPort}…`);
  spawnSync(
    'redis-server',
    ['--port', String(redisPort), '--bind', bind, '--daemonize', 'yes', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return (await untilRedisAnswers(5000)) ? undefined : failure;
}

const failures = [ensureChromium(), await ensureRedis()].filter(Boolean);
for (const failure of failures) console.error(failure);
process.exitCode = failures.length > 0 ? 1 : 0;
