// The /box page (bundled as /sdk/box-page.js): a worker's files, commands and wake-ups in the browser, every request
// sealed and every answer opened here with @noble, the user key kept in IndexedDB.
import { AddressError, formatBoxAddress, parseBoxAddress, type WorkerAddress } from '../e2e/address.js';
import { toBase64url } from '../e2e/encoding.js';
import { nobleSuite } from '../e2e/noble-suite.js';
import { type Answer, type DownloadAnswer, REQUEST_TYPES, type WorkerOffer } from '../e2e/protocol.js';
import type { RawKeyPair } from '../e2e/suite.js';
import { formatTicket, parseTicket } from '../e2e/ticket.js';
import { loadValue, storeValue } from './browser-store.js';
import { startDownload, uploadBlob } from './browser-transfers.js';
import { saveMode, saveStream } from './save.js';
import { formatUserKeyFile, parseUserKeyFile } from './user-key-file.js';
import { AnswerError, connectWorker, fetchTicketAnswer, type WorkerClient } from './worker-client.js';

const suite = nobleSuite;
/** Seconds a request may wait to be taken, and its answer to come: a running worker answers in well under one. */
const REQUEST_SECONDS = 20;
/** A request left for a stopped worker lives this long when the worker did not say its relay's TTL. */
const DEFAULT_DETACHED_SECONDS = 86_400;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);

/** One entry of a listing, as the worker sends it. */
interface Entry {
  name: string;
  type: 'file' | 'dir';
  size: number;
  mtime: number;
}

/** A request the page can also leave for a stopped worker: what to send, and how to word it. */
interface Action {
  typ: string;
  body: unknown;
  /** As the CLI names it: "exec", "wol", "fs mkdir", "fs rm". */
  command: string;
  /** What the user asked, for the list of waiting requests. */
  label: string;
}

/** A request left for the worker, as kept in IndexedDB. */
interface Waiting {
  ticket: string;
  label: string;
  sentAt: number;
  /** The answer in words, once it came. */
  answer?: string;
  failed?: boolean;
}

const state: {
  address?: WorkerAddress;
  user?: RawKeyPair;
  worker?: WorkerClient;
  offer?: WorkerOffer;
  path: string;
  waiting: Waiting[];
  polling: boolean;
} = { path: '/', waiting: [], polling: false };

const sizeText = (bytes: number) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
};
const dateText = (ms: number) => (ms ? new Date(ms).toLocaleString() : '');

function say(text: string, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

/** The sentence of a failure: the worker's refusals and the protocol's own errors as they are. */
const messageOf = (error: unknown) =>
  (error as { serverMessage?: string })?.serverMessage ?? (error as Error)?.message ?? String(error);

function progress(label: string, done: number, total: number | undefined) {
  $('progress-line').hidden = false;
  const bar = $<HTMLProgressElement>('progress');
  if (total) bar.value = Math.min(1, done / total);
  else bar.removeAttribute('value');
  $('progress-text').textContent = `${label}: ${sizeText(done)}${total ? ` of ${sizeText(total)}` : ''}`;
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  properties: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const made = Object.assign(document.createElement(tag), properties);
  made.append(...children);
  return made;
}

const button = (text: string, onClick: () => void, className = '') =>
  element('button', { type: 'button', textContent: text, className, onclick: onClick });

const joinPath = (dir: string, name: string) => `${dir.replace(/\/+$/, '')}/${name}`;
const parentOf = (path: string) => path.replace(/\/[^/]+\/?$/, '') || '/';

// ---- The user key -------------------------------------------------------------------------------------------

function showKey() {
  $('key').hidden = false;
  $('no-key').hidden = state.user !== undefined;
  $('has-key').hidden = state.user === undefined;
  if (!state.user) return;
  const publicKey = toBase64url(state.user.publicKey);
  input('public-key').value = publicKey;
  $('auth-snippet').textContent =
    `auth:\n  - name: <you>\n    key: ${publicKey}\n    allow: { fs: '*', exec: '*', wol: '*' }`;
}

async function keepUser(keys: RawKeyPair) {
  await storeValue('user', { secretKey: keys.secretKey, publicKey: keys.publicKey });
  state.user = keys;
  showKey();
}

$('make-key').addEventListener('click', async () => {
  await keepUser(suite.ed25519Keygen());
  ($('key') as HTMLDetailsElement).open = true;
  say(
    "Your key is made and kept in this browser. Give its public key to the worker's owner; once it is in the worker's auth list, press Connect again.",
  );
});

$('copy-key').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(input('public-key').value);
    say('The public key is copied.');
  } catch {
    input('public-key').select();
    say('Copy the selected key (Ctrl+C or ⌘C).');
  }
});

$('export-key').addEventListener('click', () => {
  if (!state.user) return;
  const url = URL.createObjectURL(new Blob([formatUserKeyFile(state.user)], { type: 'application/json' }));
  element('a', { href: url, download: 'user.json' }).click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  say('Saved user.json: it holds your secret key. "deadrop call --key user.json" uses it in a terminal.');
});

input('import-key').addEventListener('change', async () => {
  const file = input('import-key').files?.[0];
  if (!file) return;
  try {
    await keepUser(parseUserKeyFile(await file.text(), suite));
    say(`Imported the key of ${file.name}.`);
    if (state.address) await connect();
  } catch (error) {
    say(`${file.name} cannot be used as a key: ${messageOf(error)}.`, true);
  }
  input('import-key').value = '';
});

$('retry').addEventListener('click', () => void connect());

// ---- Requests ---------------------------------------------------------------------------------------------

/** Sends a request and waits for its answer; a refusal is thrown as its sentence (AnswerError). */
function ask<T>(typ: string, body: unknown): Promise<T> {
  if (!state.worker) throw new Error('Open a worker first.');
  return state.worker.request<T>(typ, body, { ttlSeconds: REQUEST_SECONDS });
}

/** The most a request may wait for the worker: the relay's TTL as the worker reported it, and the worker's limit. */
function detachedLifetime(): number {
  const reported = state.worker?.descriptor.ttl;
  const relay = reported && reported > 0 ? reported : DEFAULT_DETACHED_SECONDS;
  return Math.min(relay, state.offer?.maxRequestSeconds ?? relay);
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
async function perform(action: Action, show: (result: unknown) => void) {
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

function renderWaiting() {
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
async function pollWaiting() {
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
            if (answer.ok && ticket.command.startsWith('fs ')) void list(state.path);
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

// ---- Files ------------------------------------------------------------------------------------------------

function renderCrumbs(path: string) {
  const crumbs = $('crumbs');
  crumbs.replaceChildren(button('/', () => void list('/'), 'link'));
  let at = '';
  for (const part of path.split('/').filter(Boolean)) {
    at = `${at}/${part}`;
    const target = at;
    crumbs.append(
      ' › ',
      button(part, () => void list(target), 'link'),
    );
  }
  input('goto').value = path;
}

function renderListing(path: string, entries: Entry[], truncated: boolean) {
  const body = $('listing').querySelector('tbody') as HTMLTableSectionElement;
  body.replaceChildren();
  const operations = new Set(state.offer?.fs?.operations ?? []);
  for (const entry of entries) {
    const full = path === '/' ? `/${entry.name}` : joinPath(path, entry.name);
    const name =
      entry.type === 'dir'
        ? button(`${entry.name}/`, () => void list(full), 'link')
        : button(entry.name, () => void download(full), 'link');
    const actions = element('td');
    if (path !== '/' && operations.has('download')) {
      actions.append(
        button(entry.type === 'dir' ? 'Download .tar' : 'Download', () => void download(full), 'small'),
      );
    }
    if (path !== '/' && operations.has('delete')) {
      actions.append(
        ' ',
        button('Delete', () => void remove(full, entry.type), 'small danger'),
      );
    }
    body.append(
      element(
        'tr',
        { className: entry.type },
        element('td', {}, name),
        element('td', { className: 'num', textContent: entry.type === 'dir' ? '' : sizeText(entry.size) }),
        element('td', { textContent: dateText(entry.mtime) }),
        actions,
      ),
    );
  }
  if (entries.length === 0)
    body.append(
      element(
        'tr',
        {},
        element('td', { colSpan: 4, className: 'muted', textContent: 'This folder is empty.' }),
      ),
    );
  if (truncated)
    body.append(
      element(
        'tr',
        {},
        element('td', {
          colSpan: 4,
          className: 'muted',
          textContent: 'More entries than the worker lists at once.',
        }),
      ),
    );
}

/** Lists `path`; `after` is a sentence to show once listed instead of the count (what was just done there). */
async function list(path: string, after?: string) {
  if (!after) say(`Listing ${path}…`);
  try {
    const listing = await ask<{ path: string; entries: Entry[]; truncated: boolean }>(
      REQUEST_TYPES.fs('list'),
      { path },
    );
    state.path = listing.path;
    renderCrumbs(listing.path);
    renderListing(listing.path, listing.entries, listing.truncated);
    const inRoot = listing.path !== '/';
    const operations = new Set(state.offer?.fs?.operations ?? []);
    $('up').hidden = !inRoot;
    $('download-folder').hidden = !inRoot || !operations.has('download');
    $('mkdir-form').hidden = !inRoot || !operations.has('mkdir');
    $('drop-zone').hidden = !inRoot || !operations.has('upload');
    $('find-form').hidden = !operations.has('find') && !operations.has('grep');
    say(after ?? `${listing.path}: ${listing.entries.length} entries.`);
  } catch (error) {
    say(messageOf(error), true);
  }
}

async function download(path: string) {
  if (!state.worker) return;
  const name = path.split('/').filter(Boolean).at(-1) ?? 'download';
  say(`Asking the worker for ${path}…`);
  try {
    const { info, body } = await startDownload(state.worker, path, suite);
    const saveAs = info.type === 'dir' ? info.name : name;
    const total = info.type === 'dir' ? info.estimate : info.size;
    const started = performance.now();
    await saveStream(body, saveAs, info.type === 'dir' ? undefined : info.size, (done) =>
      progress(`Downloading ${saveAs}`, done, total),
    );
    const seconds = (performance.now() - started) / 1000;
    say(
      info.type === 'dir'
        ? `Saved ${path} as ${saveAs} (${info.files} files, ${sizeText(info.bytes)}).`
        : `Saved ${saveAs} (${sizeText((info as DownloadAnswer & { size: number }).size)}) in ${seconds.toFixed(1)} s${saveMode() === 'memory' ? ' (held in memory: this browser cannot stream to disk here)' : ''}.`,
    );
  } catch (error) {
    say(messageOf(error), true);
  }
}

async function upload(files: File[]) {
  if (!state.worker) return;
  const dir = state.path;
  const done: string[] = [];
  for (const file of files) {
    const target = joinPath(dir, file.name);
    say(`Uploading ${file.name} to ${dir}…`);
    try {
      const result = await uploadBlob(state.worker, file, target, suite, {
        overwrite: input('overwrite').checked,
        onProgress: (phase, done, total) =>
          progress(`${phase === 'sealing' ? 'Encrypting' : 'Uploading'} ${file.name}`, done, total),
      });
      done.push(`Uploaded ${file.name} to ${result.path} (${sizeText(result.size)}).`);
      say(done.at(-1) as string);
    } catch (error) {
      const conflict = error instanceof AnswerError && error.code === 'conflict';
      say(
        conflict
          ? `${target} exists on the worker; tick "replace files that exist" to replace it.`
          : messageOf(error),
        true,
      );
      return;
    }
  }
  await list(dir, done.join(' '));
}

async function remove(path: string, type: 'file' | 'dir') {
  if (!confirm(`Delete ${path}${type === 'dir' ? ' (an empty folder)' : ''} on the worker?`)) return;
  await perform(
    { typ: REQUEST_TYPES.fs('delete'), body: { path }, command: 'fs rm', label: `delete ${path}` },
    () => void list(state.path, `Deleted ${path}.`),
  );
}

$('up').addEventListener('click', () => void list(parentOf(state.path)));
$('download-folder').addEventListener('click', () => void download(state.path));
$('goto-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void list(input('goto').value.trim() || '/');
});
$('mkdir-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = input('mkdir-name').value.trim();
  if (!name) return;
  const path = joinPath(state.path, name);
  void perform(
    { typ: REQUEST_TYPES.fs('mkdir'), body: { path }, command: 'fs mkdir', label: `new folder ${path}` },
    () => {
      input('mkdir-name').value = '';
      void list(state.path, `Made ${path}.`);
    },
  );
});
input('upload').addEventListener('change', async () => {
  const files = Array.from(input('upload').files ?? []);
  input('upload').value = '';
  await upload(files);
});
const zone = $('drop-zone');
zone.addEventListener('dragover', (event) => {
  event.preventDefault();
  zone.classList.add('over');
});
zone.addEventListener('dragleave', () => zone.classList.remove('over'));
zone.addEventListener('drop', (event) => {
  event.preventDefault();
  zone.classList.remove('over');
  const files = Array.from(event.dataTransfer?.files ?? []);
  if (files.length) void upload(files);
});

$('find-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = input('find-text').value.trim();
  if (!text) return;
  const byContent = $<HTMLSelectElement>('find-mode').value === 'content';
  const found = $('found');
  found.replaceChildren();
  say(`Finding ${byContent ? `"${text}" in files` : text} below ${state.path}…`);
  try {
    const lines: { path: string; type: string; text?: string }[] = [];
    let truncated = false;
    if (byContent) {
      const result = await ask<{
        matches: { path: string; line: number; text: string }[];
        truncated: boolean;
      }>(REQUEST_TYPES.fs('grep'), { path: state.path, text });
      for (const match of result.matches)
        lines.push({ path: match.path, type: 'file', text: `${match.line}: ${match.text}` });
      truncated = result.truncated;
    } else {
      const pattern = /[*?[]/.test(text) ? text : `*${text}*`;
      const result = await ask<{ results: { path: string; type: string }[]; truncated: boolean }>(
        REQUEST_TYPES.fs('find'),
        {
          path: state.path,
          pattern,
        },
      );
      lines.push(...result.results);
      truncated = result.truncated;
    }
    for (const line of lines) {
      const open = line.type === 'dir' ? () => void list(line.path) : () => void list(parentOf(line.path));
      found.append(element('li', {}, button(line.path, open, 'link'), line.text ? ` ${line.text}` : ''));
    }
    say(`${lines.length} found${truncated ? " (the search stopped at the worker's limit)" : ''}.`);
  } catch (error) {
    say(messageOf(error), true);
  }
});

// ---- Commands and wake-ups --------------------------------------------------------------------------------

function showOutput(text: string) {
  $('output').hidden = false;
  $('output').textContent = text;
}

function renderCommands(offer: WorkerOffer) {
  const execList = $('exec-list');
  execList.replaceChildren();
  for (const command of offer.exec) {
    const form = element('form', { className: 'command' }, element('strong', { textContent: command.name }));
    for (const param of command.params) {
      const id = `param-${command.name}-${param.name}`;
      form.append(element('label', { htmlFor: id, textContent: param.name }));
      if (param.values) {
        const select = element('select', { id, name: param.name });
        for (const value of param.values)
          select.append(element('option', { value, textContent: value, selected: value === param.default }));
        form.append(select);
      } else {
        form.append(
          element('input', {
            id,
            name: param.name,
            value: param.default ?? '',
            placeholder: param.pattern ?? '',
            autocomplete: 'off',
            ...(param.pattern && { pattern: param.pattern, title: `Must match ${param.pattern}` }),
          }),
        );
      }
    }
    form.append(element('p', {}, element('button', { type: 'submit', textContent: `Run ${command.name}` })));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const params: Record<string, string> = {};
      for (const param of command.params)
        params[param.name] = (form.elements.namedItem(param.name) as HTMLInputElement).value;
      const shown = Object.entries(params)
        .map(([name, value]) => ` ${name}=${value}`)
        .join('');
      void perform(
        {
          typ: REQUEST_TYPES.exec,
          body: { name: command.name, params },
          command: 'exec',
          label: `${command.name}${shown}`,
        },
        (result) => {
          const ran = result as {
            stdout: string;
            stderr: string;
            exitCode: number | null;
            timedOut: boolean;
            truncated: boolean;
          };
          const ending = ran.timedOut ? 'stopped after its timeout' : `exit code ${ran.exitCode}`;
          showOutput(
            `$ ${command.name}${shown}\n${ran.stdout}${ran.stderr}${ran.truncated ? "\n… (cut at the worker's limit)" : ''}\n(${ending})`,
          );
          say(`${command.name} ran: ${ending}.`, ran.exitCode !== 0);
        },
      );
    });
    execList.append(form);
  }
  const wolList = $('wol-list');
  wolList.replaceChildren();
  for (const target of offer.wol) {
    wolList.append(
      button(
        `Wake ${target}`,
        () =>
          void perform(
            { typ: REQUEST_TYPES.wol, body: { target }, command: 'wol', label: `wake ${target}` },
            (result) => {
              const woken = result as { target: string; mac: string };
              say(`Sent a magic packet to ${woken.target} (${woken.mac}).`);
            },
          ),
      ),
    );
  }
  $('commands').hidden = offer.exec.length === 0 && offer.wol.length === 0;
}

// ---- Opening a worker -------------------------------------------------------------------------------------

function render(offer: WorkerOffer) {
  state.offer = offer;
  $('files').hidden = !offer.fs;
  renderCommands(offer);
  $('later').hidden = false;
}

/** Reads and checks the descriptor (nothing is sent before), then asks the worker what this user may use. */
async function connect() {
  const address = state.address;
  if (!address) return;
  say(`Reading worker ${address.id}…`);
  const remembered = await loadValue(`descriptor:${address.publicKey}`);
  try {
    state.worker = await connectWorker(address, {
      user: state.user ?? suite.ed25519Keygen(),
      suite,
      remembered,
    });
  } catch (error) {
    state.worker = undefined;
    for (const id of ['files', 'commands', 'later']) $(id).hidden = true;
    say(messageOf(error), true);
    return;
  }
  await storeValue(`descriptor:${address.publicKey}`, state.worker.descriptor);
  $('worker-line').textContent = `Worker ${address.id} at ${address.relay}`;
  if (!state.user) {
    showKey();
    ($('key') as HTMLDetailsElement).open = true;
    say(
      "This browser has no user key yet: make one (or import yours), and have it added to the worker's auth list.",
    );
    return;
  }
  state.waiting = (await loadValue<Waiting[]>(`waiting:${address.publicKey}`)) ?? [];
  renderWaiting();
  void pollWaiting();
  const known = await loadValue<WorkerOffer>(
    `offer:${address.publicKey}:${toBase64url(state.user.publicKey)}`,
  );
  if (known) render(known);
  say(`Asking worker ${address.id} what you may use…`);
  try {
    const offer = await ask<WorkerOffer>(REQUEST_TYPES.info, {});
    await storeValue(`offer:${address.publicKey}:${toBase64url(state.user.publicKey)}`, offer);
    render(offer);
    ($('key') as HTMLDetailsElement).open = false;
    if (offer.fs) await list(offer.fs.roots.length === 1 ? `/${offer.fs.roots[0]}` : '/');
    else say(`Connected to worker ${address.id}.`);
  } catch (error) {
    say(messageOf(error), true);
    if (error instanceof AnswerError && error.code === 'forbidden') {
      showKey();
      ($('key') as HTMLDetailsElement).open = true;
    }
    if (error instanceof AnswerError && error.code === 'no_answer' && state.offer) {
      $('status').append(' Tick "Run when the worker is back" to leave requests for it.');
    }
  }
}

async function open(text: string) {
  try {
    const address = parseBoxAddress(text, location.href);
    if (new URL(address.relay).origin !== location.origin) {
      throw new AddressError(
        `This page talks only to the relay that served it (${location.origin}); open ${formatBoxAddress(address)} instead.`,
      );
    }
    state.address = address;
    $('open').hidden = true;
    history.replaceState(null, '', `#${address.publicKey}.${address.id}`);
    await connect();
  } catch (error) {
    $('open').hidden = false;
    say(messageOf(error), true);
  }
}

$('open-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void open(input('address').value);
});

async function start() {
  const kept = await loadValue<RawKeyPair>('user').catch(() => undefined);
  if (kept) state.user = { secretKey: kept.secretKey, publicKey: kept.publicKey };
  showKey();
  if (location.hash.length > 1) await open(location.href);
  else {
    $('open').hidden = false;
    ($('key') as HTMLDetailsElement).open = !state.user;
    say('Open a worker by its address: the link its owner gave you, or what "deadrop worker" printed.');
  }
}

void start();
