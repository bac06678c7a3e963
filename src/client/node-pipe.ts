// The relay's pipe as Node streams on undici's request API, for the worker's and the client's file transfers.
import { Readable } from 'node:stream';
import { Agent, type Dispatcher, request } from 'undici';
import type { DropPipe } from '../../sdk/drop/live.js';
import { STREAM_BUFFER_BYTES } from '../../sdk/e2e/node-streams.js';
import { DeadropError } from '../../sdk/index.js';

// fetch hands a body over as a web stream, and Readable.fromWeb/toWeb turn it back and forth chunk by chunk:
// for a large file that machinery costs more CPU than the relay's whole pipe. undici's request API takes and
// gives Node streams as they are.

/** Both ends of `/pipe/<key>` as Node streams. */
export interface NodePipe {
  /**
   * Streams `body` to `/pipe/<key>`; resolves once all of it is through. With its `length` the body goes as it
   * is rather than in HTTP chunks, which spares the relay and the receiver a chunk header per buffer written.
   */
  send(key: string, body: Readable, signal?: AbortSignal, length?: number): Promise<void>;
  /** What the other side streams to `/pipe/<key>`, once it is there. */
  receive(key: string, signal?: AbortSignal): Promise<Readable>;
}

/** Errors that prove the request never reached a relay, so that the next URL may be tried. */
const NOT_CONNECTED = /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|UND_ERR_CONNECT_TIMEOUT)$/;

/**
 * One connection pool for every transfer of the process. The relay holds a side up to its pipe TTL (60 s)
 * before the other comes, well within the header timeout; a transfer that stalls for 5 minutes is cut.
 */
let agent: Agent | undefined;
const dispatcher = () => {
  agent ??= new Agent({ headersTimeout: 300_000, bodyTimeout: 300_000, keepAliveTimeout: 4_000 });
  return agent;
};

/** The relay's answer as a DeadropError, with its JSON message when it has one. */
async function answerError(
  method: string,
  url: string,
  answer: Dispatcher.ResponseData,
): Promise<DeadropError> {
  const body = (await answer.body.json().catch(() => ({}))) as { error?: string; message?: string };
  return new DeadropError(answer.statusCode, body.error ?? '', method, url, body.message);
}

/** The pipe at the relay URLs `relays` (an instance's URLs, tried in turn while none can be reached). */
export function createNodePipe(relays: string | readonly string[]): NodePipe {
  const bases = (typeof relays === 'string' ? [relays] : relays).map((url) => url.replace(/\/+$/, ''));

  /** Follows `/pipe/<key>` to the relay's `/stream/<token>`: the 307 every side gets. */
  const hop = async (method: 'GET' | 'POST', key: string, signal?: AbortSignal): Promise<string> => {
    let failure: unknown;
    for (const base of bases) {
      const url = `${base}/pipe/${encodeURIComponent(key)}`;
      let answer: Dispatcher.ResponseData;
      try {
        answer = await request(url, { method, dispatcher: dispatcher(), signal });
      } catch (error) {
        if (signal?.aborted) throw error;
        failure = new DeadropError(0, '', method, url, undefined, error);
        if (NOT_CONNECTED.test((error as { code?: string }).code ?? '')) continue;
        throw failure;
      }
      const location = answer.headers.location;
      if (answer.statusCode !== 307 || typeof location !== 'string')
        throw await answerError(method, url, answer);
      await answer.body.dump();
      return new URL(location, url).href;
    }
    throw failure;
  };

  return {
    async send(key, body, signal, length) {
      const url = await hop('POST', key, signal);
      let answer: Dispatcher.ResponseData;
      try {
        answer = await request(url, {
          method: 'POST',
          body,
          headers: {
            'content-type': 'application/octet-stream',
            ...(length !== undefined && { 'content-length': String(length) }),
          },
          dispatcher: dispatcher(),
          signal,
        });
      } catch (error) {
        if (signal?.aborted) throw error;
        throw new DeadropError(0, '', 'POST', url, undefined, error);
      }
      if (answer.statusCode !== 200) throw await answerError('POST', url, answer);
      // The relay answers a few lines as the transfer goes, and cuts its answer short if the transfer fails.
      await answer.body.text().catch((error: unknown) => {
        if (signal?.aborted) throw error;
        throw new DeadropError(0, '', 'POST', url, undefined, error);
      });
    },

    async receive(key, signal) {
      const url = await hop('GET', key, signal);
      let answer: Dispatcher.ResponseData;
      try {
        answer = await request(url, { dispatcher: dispatcher(), signal, highWaterMark: STREAM_BUFFER_BYTES });
      } catch (error) {
        if (signal?.aborted) throw error;
        throw new DeadropError(0, '', 'GET', url, undefined, error);
      }
      if (answer.statusCode !== 200) throw await answerError('GET', url, answer);
      return answer.body;
    },
  };
}

/**
 * The pipe of the relay `relay()` names, as a drop's live lane uses it; the relay is asked for when the lane is
 * first used (a link is parsed by then).
 */
export function createDropPipe(relay: () => string): DropPipe {
  let pipe: NodePipe | undefined;
  const open = () => {
    pipe ??= createNodePipe(relay());
    return pipe;
  };
  return {
    send: (key, body, length, signal) =>
      open().send(key, Readable.from(body, { objectMode: false }), signal, length),
    receive: (key, signal) => open().receive(key, signal),
  };
}
