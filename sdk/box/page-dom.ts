// The /box page's small DOM helpers: finding elements, making them, the status line and the progress bar.

/** The element with `id`. */
export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
/** The input with `id`. */
export const input = (id: string) => $<HTMLInputElement>(id);

/** `1536` → `1.5 KiB`. */
export const sizeText = (bytes: number) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
};
/** A modification time in the reader's own format. */
export const dateText = (ms: number) => (ms ? new Date(ms).toLocaleString() : '');

/** Shows `text` on the status line, in red for an error. */
export function say(text: string, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

/** The sentence of a failure: the worker's refusals and the protocol's own errors as they are. */
export const messageOf = (error: unknown) =>
  (error as { serverMessage?: string })?.serverMessage ?? (error as Error)?.message ?? String(error);

/** Shows a transfer's progress: `done` of `total` bytes (unknown total: an indeterminate bar). */
export function progress(label: string, done: number, total: number | undefined) {
  $('progress-line').hidden = false;
  const bar = $<HTMLProgressElement>('progress');
  if (total) bar.value = Math.min(1, done / total);
  else bar.removeAttribute('value');
  $('progress-text').textContent = `${label}: ${sizeText(done)}${total ? ` of ${sizeText(total)}` : ''}`;
}

/** An element with properties and children. */
export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  properties: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const made = Object.assign(document.createElement(tag), properties);
  made.append(...children);
  return made;
}

/** A button that calls `onClick`. */
export const button = (text: string, onClick: () => void, className = '') =>
  element('button', { type: 'button', textContent: text, className, onclick: onClick });

/** `dir/name`. */
export const joinPath = (dir: string, name: string) => `${dir.replace(/\/+$/, '')}/${name}`;
/** The folder that holds `path` ("/" at the top). */
export const parentOf = (path: string) => path.replace(/\/[^/]+\/?$/, '') || '/';
