// One wording for a relay the CLI cannot use: a bad URL, a failed connection or an error answer, as a sentence.
import { DeadropError } from '../../sdk/index.js';

/** A relay that cannot be used; the message names the URL and what to check. */
export class RelayError extends Error {
  /**
   * @param relay The relay's URL as given.
   * @param message The sentence.
   */
  constructor(
    readonly relay: string,
    message: string,
  ) {
    super(message);
    this.name = 'RelayError';
  }
}

const EXAMPLE = 'such as https://relay.example or http://localhost:8080';

/**
 * The relay's base URL from what the user gave: an http:// or https:// URL without a trailing slash. Anything
 * else is a RelayError, before any request is made.
 */
export function parseRelayUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RelayError(text, `"${text}" is not a relay URL; give one ${EXAMPLE}.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RelayError(
      text,
      `The relay URL ${text} starts with "${url.protocol}"; a relay is reached over http:// or https://, ${EXAMPLE}.`,
    );
  }
  return text.replace(/\/+$/, '');
}

/** The relay a request went to: its URL before the route. */
const relayOfRequest = (url: string) =>
  url.replace(/\/(keys|id|limits|private|public|pipe|stream)([/?].*)?$/, '');

/** What a failed fetch carries, one level of `cause` after another. */
interface Failure {
  name?: string;
  code?: string;
  message?: string;
  cause?: unknown;
}

/** The first code found down the chain of causes, and whether a timeout aborted the request. */
function reasonOf(error: unknown): { code?: string; timeout: boolean; message: string } {
  let timeout = false;
  let message = '';
  for (let at = error as Failure | undefined, depth = 0; at && depth < 5; depth++) {
    if (at.name === 'TimeoutError') timeout = true;
    // undici says so in words, without a code.
    if (at.message === 'unknown scheme') return { code: 'UNKNOWN_SCHEME', timeout, message: at.message };
    if (at.message === 'bad port') return { code: 'BAD_PORT', timeout, message: at.message };
    if (typeof at.code === 'string') return { code: at.code, timeout, message: at.message ?? '' };
    message = at.message ?? message;
    at = at.cause as Failure | undefined;
  }
  return { timeout, message };
}

const TIMEOUTS = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);
const CUT = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED']);
const UNRESOLVED = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);
const UNREACHABLE = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);

/** The relay's answer to a request as a sentence: its JSON message when it is a relay, else what to check. */
function answerSentence(error: DeadropError, origin: string): string {
  const status = `${error.status}${error.response?.statusText ? ` ${error.response.statusText}` : ''}`;
  if (error.serverMessage) return `The relay at ${origin} answered ${status}: ${error.serverMessage}`;
  return (
    `${origin} answered ${status} with no message, unlike a deadrop relay: check that the URL is the ` +
    "relay's own (without a path), and that a proxy in front of it passes requests through."
  );
}

/**
 * The sentence for `error`, thrown by a request to the relay at `relay` (fetch's TypeError, an SDK
 * DeadropError, an abort by timeout, a RelayError): it names the URL and what to check.
 */
export function describeRelayFailure(error: unknown, given: string): string {
  if (error instanceof RelayError) return error.message;
  // The SDK's error names the URL it tried: with several relays, the one that failed.
  const relay = error instanceof DeadropError ? relayOfRequest(error.url) : given;
  let url: URL;
  try {
    url = new URL(relay);
  } catch {
    return new RelayError(relay, `"${relay}" is not a relay URL; give one ${EXAMPLE}.`).message;
  }
  const origin = relay.replace(/\/+$/, '');
  const where = url.host;
  if (error instanceof DeadropError && error.status > 0) return answerSentence(error, origin);
  const { code, timeout, message } = reasonOf(error);
  if (code === 'ERR_INVALID_URL') return `"${relay}" is not a relay URL; give one ${EXAMPLE}.`;
  if (code === 'UNKNOWN_SCHEME')
    return `The relay URL ${relay} starts with "${url.protocol}"; a relay is reached over http:// or https://.`;
  if (code === 'BAD_PORT')
    return `Port ${url.port} of ${origin} is one that fetch refuses to use (as browsers do): run the relay on another port.`;
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO' || /wrong version number/.test(message))
    return (
      `${origin} does not speak TLS (it answers in plain HTTP): use http:// instead of https://, ` +
      'or put TLS in front of the relay.'
    );
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code))
    return `The TLS certificate of ${where} is not trusted (${code}): check the name in ${origin}, or the relay's certificate.`;
  if (code === 'ECONNREFUSED')
    return `Nothing is listening at ${where} (connection refused): is the relay running, and are the host and port of ${origin} right?`;
  if (code && UNRESOLVED.has(code))
    return `The name ${url.hostname} does not resolve (${code}): check its spelling in ${origin}, and this machine's DNS.`;
  if (code && UNREACHABLE.has(code))
    return `${where} cannot be reached from this machine (${code}): check the network and the address in ${origin}.`;
  if (timeout || (code && TIMEOUTS.has(code)))
    return `The relay at ${origin} did not answer in time: check that it is up, and that no firewall or proxy holds the connection.`;
  if (code && CUT.has(code))
    return `The connection to ${origin} was cut before the relay answered: check that it is a deadrop relay, and that a proxy in front of it passes requests through.`;
  return `The relay at ${origin} could not be used (${code ?? (message || String(error))}).`;
}
