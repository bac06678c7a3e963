// The /stream/ tokens this instance holds: one sender meets one receiver on each, either arriving first.
import { errors } from '../errors.js';

/** A side waiting at /stream/ for the other one. */
export interface StreamParty {
  /** The token is gone before the other side came: its TTL ended, or the matcher was closed. */
  end(reason: 'expired' | 'closed'): void;
}

/** Why a token was freed: `met` after its stream ran (well or not); otherwise it never carried one. */
export type FreeReason = 'met' | 'left' | 'expired' | 'closed';

/**
 * Pairs parties by token. The second side to join gets the waiting one back and runs the stream; then
 * `finish` frees the token, so it never carries a second stream.
 */
export interface StreamMatcher<S extends StreamParty, R extends StreamParty> {
  /** Accepts `token` for `ttlMs`; `onFree` learns when it is gone, and why. */
  hold(token: string, onFree?: (reason: FreeReason) => void): void;
  /** The waiting receiver, or undefined (the sender waits). Throws 404 for an unknown token, 409 when taken. */
  joinAsSender(token: string, sender: S): R | undefined;
  /** The waiting sender, or undefined (the receiver waits). Throws 404 for an unknown token, 409 when taken. */
  joinAsReceiver(token: string, receiver: R): S | undefined;
  /** A waiting side went away: its token is freed. A no-op once the stream runs. */
  leave(token: string, party: S | R): void;
  /** The stream of `token` is over: its token is freed. */
  finish(token: string): void;
  /** Tokens held (waiting or streaming) and sides waiting, for health checks and tests. */
  stats(): { held: number; waiting: number };
  /** Frees every token with no stream running; waiting sides are told `closed`. Running streams go on to `finish`. */
  close(): void;
}

interface HeldToken<S, R> {
  sender: S | undefined;
  receiver: R | undefined;
  streaming: boolean;
  timer: NodeJS.Timeout;
  onFree: (reason: FreeReason) => void;
}

/** A matcher whose tokens wait `ttlMs` for both sides; once both are there, the TTL no longer applies. */
export function createStreamMatcher<S extends StreamParty, R extends StreamParty>({
  ttlMs,
}: {
  ttlMs: number;
}): StreamMatcher<S, R> {
  const tokens = new Map<string, HeldToken<S, R>>();

  const free = (token: string, reason: FreeReason) => {
    const held = tokens.get(token);
    if (!held) return;
    tokens.delete(token);
    clearTimeout(held.timer);
    if (reason === 'expired' || reason === 'closed') {
      held.sender?.end(reason);
      held.receiver?.end(reason);
    }
    held.onFree(reason);
  };

  const join = (token: string, side: 'sender' | 'receiver', party: S | R): S | R | undefined => {
    const held = tokens.get(token);
    if (!held) throw errors.pipeNotFound();
    if (held.streaming || held[side] !== undefined) throw errors.pipeBusy();
    const peer = side === 'sender' ? held.receiver : held.sender;
    if (side === 'sender') held.sender = party as S;
    else held.receiver = party as R;
    if (peer !== undefined) {
      held.streaming = true;
      clearTimeout(held.timer);
    }
    return peer;
  };

  return {
    hold(token, onFree = () => {}) {
      const timer = setTimeout(() => free(token, 'expired'), ttlMs).unref();
      tokens.set(token, { sender: undefined, receiver: undefined, streaming: false, timer, onFree });
    },
    joinAsSender: (token, sender) => join(token, 'sender', sender) as R | undefined,
    joinAsReceiver: (token, receiver) => join(token, 'receiver', receiver) as S | undefined,
    leave(token, party) {
      const held = tokens.get(token);
      if (held && !held.streaming && (held.sender === party || held.receiver === party)) free(token, 'left');
    },
    finish(token) {
      if (tokens.get(token)?.streaming) free(token, 'met');
    },
    stats() {
      let waiting = 0;
      for (const held of tokens.values()) {
        if (!held.streaming)
          waiting += Number(held.sender !== undefined) + Number(held.receiver !== undefined);
      }
      return { held: tokens.size, waiting };
    },
    close() {
      // A running stream is the server's to let finish or to cut (a graceful shutdown's grace period).
      for (const [token, held] of [...tokens]) if (!held.streaming) free(token, 'closed');
    },
  };
}
