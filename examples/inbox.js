// The inbox: subscribes to a private key's queue with the deadrop SDK and shows each item as it comes.
import { createClient } from '/sdk/deadrop.js';

const relay = createClient(location.origin);
const $ = (id) => document.getElementById(id);
let listening;

/** A field's value as text: strings as they are, anything else (objects, arrays, numbers) as JSON. */
const asText = (value) => (typeof value === 'string' ? value : JSON.stringify(value));

function show(item) {
  const entry = document.createElement('div');
  entry.className = 'item';
  const fields = item && typeof item === 'object' && !Array.isArray(item) ? item : { value: item };
  for (const [name, value] of Object.entries(fields)) {
    const line = document.createElement('div');
    const label = document.createElement('strong');
    label.textContent = `${name}: `;
    line.append(label, asText(value));
    entry.append(line);
  }
  $('items').prepend(entry);
}

async function open(privateKey) {
  listening?.abort();
  listening = new AbortController();
  const info = await relay.keyInfo(privateKey);
  if (info.type !== 'private') throw new Error('That is a public key; the inbox needs the private one.');
  location.hash = privateKey;
  const formUrl = `${location.origin}/examples/form.html?pub=${info.public}`;
  $('form-url').href = formUrl;
  $('form-url').textContent = formUrl;
  $('form-link').hidden = false;
  $('status').textContent = 'Listening for submissions…';
  $('status').dataset.state = 'listening';
  await relay.subscribe(privateKey, show, { signal: listening.signal });
}

function start(privateKey) {
  open(privateKey).catch((error) => {
    $('status').textContent = `Stopped: ${error.message}`;
    $('status').dataset.state = 'error';
  });
}

$('open').addEventListener('submit', (event) => {
  event.preventDefault();
  start($('key').value.trim());
});
$('new').addEventListener('click', async () => {
  const pair = await relay.keys();
  $('key').value = pair.private;
  start(pair.private);
});
if (location.hash.length > 1) {
  $('key').value = location.hash.slice(1);
  start(location.hash.slice(1));
}
