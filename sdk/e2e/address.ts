// A worker's address as the worker prints it: `<relay>/public/<public key>#<id>`.

/** The parts of a worker address. */
export interface WorkerAddress {
  /** The relay's base URL. */
  relay: string;
  /** The worker's relay public key: its descriptor is read and its requests posted there. */
  publicKey: string;
  /** The worker's id, its fingerprint, in upper case: the only part a user has to trust. */
  id: string;
}

/** An address that cannot be read; the message says what is expected. */
export class AddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddressError';
  }
}

const KEY = /^[\w-]{16,64}$/;
const ID = /^[A-Z2-7]{2}(:[A-Z2-7]{2})*$/;

/** Reads `https://relay.example/public/<pub>#G6:UL:…`. */
export function parseAddress(text: string): WorkerAddress {
  const expected = 'A worker address looks like https://relay.example/public/<key>#G6:UL:U7:7L:ZD:PH:3Z:SY';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AddressError(`${expected}, but this is not a URL.`);
  }
  const match = /^(.*)\/public\/([^/]+)\/?$/.exec(url.pathname);
  const id = decodeURIComponent(url.hash.slice(1)).toUpperCase();
  if (!/^https?:$/.test(url.protocol) || !match || !KEY.test(match[2] as string)) {
    throw new AddressError(`${expected}.`);
  }
  if (!ID.test(id)) {
    throw new AddressError(`${expected}: the part after "#" is the worker's id, which it printed on start.`);
  }
  return { relay: `${url.origin}${match[1]}`, publicKey: match[2] as string, id };
}

/** The address of a worker at `relay`. */
export const formatAddress = ({ relay, publicKey, id }: WorkerAddress) =>
  `${relay}/public/${publicKey}#${id}`;

/**
 * Reads the address of the /box page, `<relay>/box#<public key>.<id>`, or a `deadrop call` address pasted as it
 * is; `base` resolves a fragment alone (`#<public key>.<id>`) against the page's own relay.
 */
export function parseBoxAddress(text: string, base?: string): WorkerAddress {
  const trimmed = text.trim();
  if (/\/public\//.test(trimmed)) return parseAddress(trimmed);
  const expected =
    'A worker address looks like https://relay.example/box#<key>.G6:UL:U7:7L:ZD:PH:3Z:SY (or the address the worker printed)';
  let url: URL;
  try {
    url = new URL(trimmed, base);
  } catch {
    throw new AddressError(`${expected}, but this is not a URL.`);
  }
  const match = /^([\w-]{16,64})\.(.+)$/.exec(decodeURIComponent(url.hash.slice(1)));
  const id = match?.[2]?.toUpperCase() ?? '';
  if (!/^https?:$/.test(url.protocol) || !match) throw new AddressError(`${expected}.`);
  if (!ID.test(id)) {
    throw new AddressError(`${expected}: the part after "." is the worker's id, which it printed on start.`);
  }
  const relay = `${url.origin}${url.pathname.replace(/\/box\/?$/, '').replace(/\/+$/, '')}`;
  return { relay, publicKey: match[1] as string, id };
}

/** The /box page's link to a worker. */
export const formatBoxAddress = ({ relay, publicKey, id }: WorkerAddress) =>
  `${relay}/box#${publicKey}.${id}`;
