// The /box page's file browser: listing with breadcrumbs, downloads (a folder as .tar), uploads by drag and drop,
// new folders, deletions and finding by name and by content.
import type { DownloadAnswer } from '../e2e/protocol.js';
import { REQUEST_TYPES } from '../e2e/protocol.js';
import { startDownload, uploadBlob } from './browser-transfers.js';
import {
  $,
  button,
  dateText,
  element,
  input,
  joinPath,
  messageOf,
  parentOf,
  progress,
  say,
  sizeText,
} from './page-dom.js';
import { ask, perform, state, suite } from './page-session.js';
import { saveMode, saveStream } from './save.js';
import { AnswerError } from './worker-client.js';

/** One entry of a listing, as the worker sends it. */
interface Entry {
  name: string;
  type: 'file' | 'dir';
  size: number;
  mtime: number;
}

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
export async function list(path: string, after?: string) {
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

state.filesChanged = () => void list(state.path);
