// The drop page: sends a file and shows its link before the upload, or opens a link and fetches into IndexedDB (resumable).
import {
  DropError,
  dropStatus,
  forgetKeptFetch,
  openBrowserSink,
  openDrop,
  parseDropLink,
  revokeDrop,
  sendDrop,
} from '/sdk/drop.js';

const $ = (id) => document.getElementById(id);
const relay = location.origin + location.pathname.replace(/\/drop\/?$/, '');
/**
 * The link this tab is fetching, kept in sessionStorage until the fetch ends. The page takes the key out of the
 * address bar (and so out of this history entry), so a reload would lose it; sessionStorage belongs to this tab
 * alone and goes with it, which is all a reload needs. In another tab, opening the link again resumes just the
 * same, from what IndexedDB kept under the drop's public key.
 */
const FETCHING = 'deadrop-drop-link';

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

/** A sentence for what went wrong: the relay's own words for a refused request, or the drop's. */
function messageOf(error) {
  if (error?.name === 'QuotaExceededError') {
    return 'This browser has no room left to keep the file: free some disk space.';
  }
  if (error?.name === 'DeadropError' && error.status === 0) {
    return 'The relay could not be reached: check the connection.';
  }
  return error?.serverMessage ?? error?.message ?? String(error);
}

/** The status line while a transfer waits. */
function waitText(wait, offlineLimit) {
  switch (wait.reason) {
    case 'receiver':
      return `Waiting for the receiver: the relay holds ${sizeText(offlineLimit)} of this drop at a time, and the upload goes on as they fetch.`;
    case 'sender':
      return 'Waiting for the sender to upload the rest of the drop.';
    case 'rate_limited':
      return `The relay asked to slow down; going on in ${wait.seconds} s.`;
    default:
      return `The relay is not answering; trying again in ${wait.seconds} s.`;
  }
}

/** Asks before the tab closes: the sender's page is the upload. */
const warnBeforeLeaving = (event) => event.preventDefault();

function sender() {
  $('send').hidden = false;
  let owner;
  let sending;
  const inputs = ['file', 'password', 'send-button'];
  $('file').addEventListener('change', () => {
    $('send-button').disabled = !$('file').files.length;
  });
  $('send-button').addEventListener('click', async () => {
    const file = $('file').files[0];
    if (!file) return;
    for (const id of inputs) $(id).disabled = true;
    say(`Encrypting ${file.name}…`);
    sending = new AbortController();
    addEventListener('beforeunload', warnBeforeLeaving);
    let uploading = '';
    let streams = false;
    try {
      await sendDrop(relay, file, {
        password: $('password').value || undefined,
        signal: sending.signal,
        onReady: (drop) => {
          owner = drop;
          streams = drop.size > drop.offlineLimit;
          $('link').value = drop.link;
          $('sent').hidden = false;
          $('keep-open').hidden = !streams;
          $('keep-open').textContent =
            `Keep this page open until the upload is done: ${file.name} is larger than the ${sizeText(drop.offlineLimit)} the relay holds for a receiver who is offline, so the rest is uploaded while the receiver fetches. Give the link now.`;
          uploading = `The link works already. Uploading ${file.name}…`;
          say(uploading);
          progress(0, drop.size);
        },
        onProgress: (sent, total) => {
          progress(sent, total);
          say(uploading);
        },
        onWait: (wait) => {
          // From the first wait for the receiver on, the upload goes at the receiver's pace: the line stays.
          if (wait.reason === 'receiver') uploading = waitText(wait, owner.offlineLimit);
          say(waitText(wait, owner?.offlineLimit ?? 0));
        },
      });
      $('keep-open').hidden = true;
      say(
        streams
          ? `Done: all of ${file.name} (${sizeText(file.size)}) is uploaded or already fetched; you can close this page.`
          : `Done: ${file.name} (${sizeText(file.size)}) is waiting on the relay for one download; you can close this page.`,
      );
    } catch (error) {
      if (sending.signal.aborted) return; // revoked: the revoke button says so
      if (owner) {
        $('sent').hidden = true;
        say(
          `The file could not be sent: ${messageOf(error)} The drop was withdrawn from the relay, so its link no longer opens; send the file again.`,
          true,
        );
      } else {
        say(`The file could not be sent: ${messageOf(error)}`, true);
      }
      owner = undefined;
      for (const id of inputs) $(id).disabled = false;
    } finally {
      removeEventListener('beforeunload', warnBeforeLeaving);
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
      const { state, expiresIn, fetchedAt } = await dropStatus(owner);
      say(
        state === 'waiting'
          ? `Not fetched yet; it expires in ${Math.ceil(expiresIn / 60)} min.`
          : state === 'fetching'
            ? 'Being fetched: a receiver began and has not had all of it yet (a fetch that was cut short resumes).'
            : state === 'fetched'
              ? `Fetched, at ${new Date(fetchedAt).toLocaleString()}: the drop is burned.`
              : 'Gone: revoked or expired.',
      );
    } catch (error) {
      say(messageOf(error), true);
    }
  });
  $('revoke').addEventListener('click', async () => {
    try {
      sending.abort(); // an upload still running withdraws itself; the rest is deleted here
      await revokeDrop(owner);
      $('keep-open').hidden = true;
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

/** Opens the drop, asking for its password until it is right; a wrong one burns nothing. */
async function openWithPassword(link) {
  let password;
  for (;;) {
    try {
      return await openDrop(link, { password });
    } catch (error) {
      if (!(error instanceof DropError && ['password_required', 'wrong_password'].includes(error.code))) {
        throw error;
      }
      if (error.code === 'wrong_password') say(error.message, true);
      password = await askPassword();
      say('Checking the password…');
    }
  }
}

/** Runs `work` while no other tab of this browser fetches the same drop: two would take each other's chunks. */
function aloneInThisBrowser(publicKey, work) {
  // Web Locks exist in secure contexts only; a relay on plain HTTP does without.
  if (!navigator.locks) return work();
  const name = `deadrop-drop-${publicKey}`;
  return navigator.locks.request(name, { ifAvailable: true }, (lock) => {
    if (lock) return work();
    say(
      'This drop is being fetched in another tab of this browser; it goes on here once that tab is closed.',
    );
    return navigator.locks.request(name, work);
  });
}

/** Fetches the drop into IndexedDB (resuming what an earlier fetch kept), then saves the verified file. */
async function fetchAndSave(drop) {
  const sink = await openBrowserSink(drop.publicKey, drop);
  const fetching =
    sink.keptBytes > 0
      ? `Resuming: ${sizeText(sink.keptBytes)} of ${sizeText(drop.size)} kept in this browser from an earlier fetch.`
      : 'Downloading and verifying…';
  say(fetching);
  progress(sink.keptBytes, drop.size);
  try {
    await drop.fetchInto(sink, {
      onProgress: (received, total) => {
        progress(received, total);
        say(fetching);
      },
      onWait: (wait) => say(waitText(wait)),
    });
  } catch (error) {
    // A drop error that is not resumable means this fetch can never complete: nothing is worth keeping.
    if (error instanceof DropError && !error.resumable) {
      await sink.forget();
      sessionStorage.removeItem(FETCHING);
      say(`${error.message} What this browser had kept of it is deleted.`, true);
    } else {
      say(
        `${messageOf(error)} What was fetched is kept in this browser: reload this page, or open the link again, to go on.`,
        true,
      );
    }
    return;
  }
  const save = document.createElement('a');
  save.textContent = 'Save the file again';
  save.href = URL.createObjectURL(await sink.file(drop.type));
  save.download = drop.name;
  $('save-slot').append(save);
  save.click();
  // The Blob keeps its bytes for the download and the link above after the rows are deleted.
  await sink.forget();
  sessionStorage.removeItem(FETCHING);
  say('Saved and verified. The drop is gone from the relay: this link will not open it again.');
}

async function receiver(link) {
  $('receive').hidden = false;
  sessionStorage.setItem(FETCHING, link);
  history.replaceState(null, '', location.pathname);
  try {
    const drop = await openWithPassword(link);
    $('file-info').textContent = `${drop.name} · ${sizeText(drop.size)}`;
    await aloneInThisBrowser(drop.publicKey, () => fetchAndSave(drop));
  } catch (error) {
    if (error instanceof DropError) {
      sessionStorage.removeItem(FETCHING);
      // Fetched, revoked or expired: whatever an interrupted fetch kept of it can never be completed.
      if (error.code === 'gone') await forgetKeptFetch(parseDropLink(link).publicKey).catch(() => {});
    }
    say(messageOf(error), true);
  }
}

const link = location.hash.length > 1 ? location.href : sessionStorage.getItem(FETCHING);
if (link) receiver(link);
else sender();
// A link pasted into the address bar of this page changes only the fragment: start over with it.
addEventListener('hashchange', () => location.hash.length > 1 && location.reload());
