// The /box page's session: the worker it opened, the user's key, requests now or left for when the worker is
// back, and the list of those waiting.
import type { WorkerAddress } from '../e2e/address.js';
import { nobleSuite } from '../e2e/noble-suite.js';
import type { Answer, WorkerOffer } from '../e2e/protocol.js';
import type { RawKeyPair } from '../e2e/suite.js';
import { formatTicket, parseTicket } from '../e2e/ticket.js';
import { storeValue } from './browser-store.js';
import { $, button, element, input, messageOf, say } from './page-dom.js';
import { AnswerError, fetchTicketAnswer, type WorkerClient } from './worker-client.js';

export const suite = nobleSuite;
/** Seconds a request may wait to be taken, and its answer to come: a running worker answers in well under one. */
const REQUEST_SECONDS = 20;
/** A request left for a stopped worker lives this long when the worker did not say its relay's TTL. */
const DEFAULT_DETACHED_SECONDS = 86_400;

/** A request the page can also leave for a stopped worker: what to send, and how to word it. */
export interface Action {
  typ: string;
  body: unknown;
  /** As the CLI names it: "exec", "wol", "fs mkdir", "fs rm". */
  command: string;
  /** What the user asked, for the list of waiting requests. */
  label: string;
}

/** A request left for the worker, as kept in IndexedDB. */
export interface Waiting {
  ticket: string;
  label: string;
  sentAt: number;
  /** The answer in words, once it came. */
  answer?: string;
  failed?: boolean;
}
/** What the page holds of the worker it opened. */
export const state: {
  address?: WorkerAddress;
  user?: RawKeyPair;
  worker?: WorkerClient;
  offer?: WorkerOffer;
  path: string;
  waiting: Waiting[];
  polling: boolean;
  /** Called when a request left for the worker changed its files, to list them again. */
  filesChanged: () => void;
} = { path: '/', waiting: [], polling: false, filesChanged: () => {} };

/** Sends a request and waits for its answer; a refusal is thrown as its sentence (AnswerError). */
export function ask<T>(typ: string, body: unknown): Promise<T> {
  if (!state.worker) throw new Error('Open a worker first.');
  return state.worker.request<T>(typ, body, { ttlSeconds: REQUEST_SECONDS });
}

/**
 * How long a request left for the worker waits: what the page's setting says, at most the relay's TTL as the worker
 * reported it (a day if it did not) and the worker's own limit.
 */
function detachedLifetime(): number {
  const reported = state.worker?.descriptor.ttl;
  const relay = reported && reported > 0 ? reported : DEFAULT_DETACHED_SECONDS;
  const most = Math.min(relay, state.offer?.maxRequestSeconds ?? relay);
  const chosen = Number(($('when-back-for') as HTMLSelectElement).value);
  return chosen > 0 ? Math.min(chosen, most) : most;
}

/** Leaves `action` for the worker and lists it as waiting. */
async function leave(action: Action) {
  if (!state.worker) return;
  const ticket = await state.worker.detach(action.typ, action.body, {
    lifetimeSeconds: detachedLifetime(),
    command: action.command,
  });
  state.waiting.unshift({ ticket: formatTicket(ticket), label: action.label, sentAt: Date.now() });
  await keepWaiting();
  say(
    `Left for the worker: ${action.label}. It runs when the worker is back, until ${new Date(ticket.exp * 1000).toLocaleString()}.`,
  );
  void pollWaiting();
}

/** Runs `action` now, or leaves it for the worker when "run when the worker is back" is on. */
export async function perform(action: Action, show: (result: unknown) => void) {
  if (input('when-back').checked) {
    await leave(action).catch((error) => say(messageOf(error), true));
    return;
  }
  say(`${action.label}…`);
  try {
    show(await ask(action.typ, action.body));
  } catch (error) {
    say(messageOf(error), true);
    if (error instanceof AnswerError && error.code === 'no_answer') offerLater(action);
  }
}

/** After a request went unanswered: a button that leaves it for when the worker is back. */
function offerLater(action: Action) {
  $('status').append(
    ' ',
    button(
      'Run it when the worker is back',
      () => void leave(action).catch((error) => say(messageOf(error), true)),
    ),
  );
}

/** An answer in a few words, for the list of waiting requests. */
function describeAnswer(command: string, answer: Answer): string {
  if (!answer.ok) return answer.error.message;
  const result = answer.result as Record<string, unknown>;
  switch (command) {
    case 'exec': {
      const exit = result.timedOut ? 'stopped after its timeout' : `exit code ${result.exitCode}`;
      return `${String(result.stdout ?? '')}${String(result.stderr ?? '')}(${exit})`.trim();
    }
    case 'wol':
      return `Sent a magic packet to ${result.target} (${result.mac}).`;
    case 'fs rm':
      return `Deleted ${result.path}.`;
    case 'fs mkdir':
      return `Made ${result.path}.`;
    default:
      return JSON.stringify(result);
  }
}

// ---- Waiting requests -------------------------------------------------------------------------------------

const keepWaiting = async () => {
  await storeValue(`waiting:${state.address?.publicKey}`, state.waiting);
  renderWaiting();
};

export function renderWaiting() {
  const list = $('waiting');
  list.replaceChildren();
  if (state.waiting.length === 0)
    list.append(element('li', { className: 'muted', textContent: 'Nothing is waiting.' }));
  for (const item of state.waiting) {
    const exp = parseTicket(item.ticket).exp * 1000;
    const line = element('li', {}, element('strong', { textContent: item.label }), ' — ');
    if (item.answer !== undefined)
      line.append(
        element('span', { textContent: item.answer, className: item.failed ? 'failed' : 'answered' }),
      );
    else if (exp <= Date.now())
      line.append(element('span', { className: 'muted', textContent: 'expired before the worker took it' }));
    else
      line.append(
        element('span', {
          className: 'muted',
          textContent: `waiting for the worker, until ${new Date(exp).toLocaleString()}`,
        }),
      );
    line.append(
      ' ',
      button(
        'Forget',
        () => {
          state.waiting = state.waiting.filter((other) => other !== item);
          void keepWaiting();
        },
        'small',
      ),
    );
    list.append(line);
  }
}

/** Waits for the answers of the requests left for the worker, one at a time so as to hold one connection. */
export async function pollWaiting() {
  if (state.polling || !state.user) return;
  state.polling = true;
  try {
    for (;;) {
      const open = state.waiting.filter(
        (item) => item.answer === undefined && parseTicket(item.ticket).exp * 1000 > Date.now(),
      );
      if (open.length === 0) return;
      for (const item of open) {
        const ticket = parseTicket(item.ticket);
        try {
          const answer = await fetchTicketAnswer(ticket, {
            user: state.user,
            suite,
            waitSeconds: open.length === 1 ? 25 : 2,
          });
          if (answer) {
            item.answer = describeAnswer(ticket.command, answer);
            item.failed = !answer.ok;
            await keepWaiting();
            if (answer.ok && ticket.command.startsWith('fs ')) state.filesChanged();
          }
        } catch (error) {
          item.answer = messageOf(error);
          item.failed = true;
          await keepWaiting();
        }
      }
      renderWaiting();
    }
  } finally {
    state.polling = false;
  }
}
