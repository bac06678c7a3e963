// The drop page: sends a file and shows its link, or opens a link, downloads with progress and saves.
import { DropError, dropNeedsPassword, dropStatus, openDrop, revokeDrop, sendDrop } from '/sdk/drop.js';

const $ = (id) => document.getElementById(id);
const relay = location.origin + location.pathname.replace(/\/drop\/?$/, '');

const sizeText = (bytes) =>
  bytes < 1024
    ? `${bytes} B`
    : bytes < 1024 ** 2
      ? `${(bytes / 1024).toFixed(1)} KiB`
      : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

function say(text, isError = false) {
  $('status').textContent = text;
  $('status').style.color = isError ? '#c0392b' : '';
}

function progress(done, total) {
  $('progress').hidden = false;
  $('progress').value = total === 0 ? 1 : done / total;
  $('progress-text').textContent = `${sizeText(done)} of ${sizeText(total)}`;
}

/** The relay's own words for a refused request, or the drop's. */
const messageOf = (error) => error?.serverMessage ?? error?.message ?? String(error);

function sender() {
  $('send').hidden = false;
  let owner;
  $('file').addEventListener('change', () => {
    $('send-button').disabled = !$('file').files.length;
  });
  $('send-button').addEventListener('click', async () => {
    const file = $('file').files[0];
    if (!file) return;
    for (const id of ['file', 'password', 'send-button']) $(id).disabled = true;
    say(`Encrypting and uploading ${file.name}…`);
    try {
      owner = await sendDrop(relay, file, {
        password: $('password').value || undefined,
        onProgress: progress,
      });
      $('link').value = owner.link;
      $('sent').hidden = false;
      say(`Done: ${file.name} (${sizeText(file.size)}) is waiting on the relay for one download.`);
    } catch (error) {
      say(`The file could not be sent: ${messageOf(error)}`, true);
      for (const id of ['file', 'password', 'send-button']) $(id).disabled = false;
    }
  });
  $('copy').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText($('link').value);
      say('The link is copied.');
    } catch {
      $('link').select();
      say('Copy the selected link (Ctrl+C or ⌘C).');
    }
  });
  $('check').addEventListener('click', async () => {
    try {
      const { state, expiresIn } = await dropStatus(owner);
      say(
        state === 'waiting'
          ? `Not fetched yet; it expires in ${Math.ceil(expiresIn / 60)} min.`
          : state === 'partial'
            ? 'A download began but did not finish.'
            : 'Gone: fetched, revoked or expired.',
      );
    } catch (error) {
      say(messageOf(error), true);
    }
  });
  $('revoke').addEventListener('click', async () => {
    try {
      await revokeDrop(owner);
      say('Revoked: nothing of the drop is left on the relay.');
    } catch (error) {
      say(messageOf(error), true);
    }
  });
}

/** Waits for a password typed into the unlock form. */
const askPassword = () =>
  new Promise((resolve) => {
    $('unlock').hidden = false;
    $('unlock-password').value = '';
    $('unlock-password').focus();
    $('unlock').addEventListener(
      'submit',
      (event) => {
        event.preventDefault();
        $('unlock').hidden = true;
        resolve($('unlock-password').value);
      },
      { once: true },
    );
  });

async function receiver(link) {
  $('receive').hidden = false;
  // The key leaves the address bar and this history entry; the drop opens once anyway.
  history.replaceState(null, '', location.pathname);
  try {
    let drop;
    if (await dropNeedsPassword(link)) {
      for (;;) {
        try {
          drop = await openDrop(link, { password: await askPassword(), onProgress: progress });
          break;
        } catch (error) {
          if (!(error instanceof DropError && error.code === 'wrong_password')) throw error;
          say(error.message, true);
        }
      }
    } else {
      drop = await openDrop(link, { onProgress: progress });
    }
    $('file-info').textContent = `${drop.name} · ${sizeText(drop.size)}`;
    say('Downloading and verifying…');
    progress(0, drop.size);
    const parts = [];
    // Nothing is saved until every chunk and the whole file's SHA-256 verified.
    await drop.body.pipeTo(new WritableStream({ write: (part) => void parts.push(part) }));
    const save = document.createElement('a');
    save.textContent = 'Save the file again';
    save.href = URL.createObjectURL(new Blob(parts, { type: drop.type }));
    save.download = drop.name;
    $('save-slot').append(save);
    save.click();
    say('Saved and verified. The drop is gone from the relay: this link will not open it again.');
  } catch (error) {
    say(messageOf(error), true);
  }
}

if (location.hash.length > 1) receiver(location.href);
else sender();
