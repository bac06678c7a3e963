// The /box page (bundled as /sdk/box-page.js): a worker's files, commands and wake-ups in the browser, every request
// sealed and every answer opened here with @noble, the user key kept in IndexedDB.
import { AddressError, formatBoxAddress, parseBoxAddress } from '../e2e/address.js';
import { toBase64url } from '../e2e/encoding.js';
import { REQUEST_TYPES, type WorkerOffer } from '../e2e/protocol.js';
import type { RawKeyPair } from '../e2e/suite.js';
import { loadValue, storeValue } from './browser-store.js';
import { $, button, element, input, messageOf, say } from './page-dom.js';
import { list } from './page-files.js';
import { ask, perform, pollWaiting, renderWaiting, state, suite, type Waiting } from './page-session.js';
import { formatUserKeyFile, parseUserKeyFile } from './user-key-file.js';
import { AnswerError, connectWorker } from './worker-client.js';

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
