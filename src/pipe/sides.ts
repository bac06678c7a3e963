// Which pipe a request at /pipe/<key> joins: the key pair, the direction of the data and the side it takes.
import { errors } from '../errors.js';
import type { KeyInfo } from '../keys.js';

/** `in`: a public sender to the private receiver; `out`: the private sender to a public receiver. */
export type PipeDirection = 'in' | 'out';
export type PipeRole = 'sender' | 'receiver';
export type PipeMethod = 'GET' | 'POST' | 'PUT';

/** The methods /pipe/ and /stream/ take: GET receives, POST and PUT send. */
export const PIPE_METHODS: readonly PipeMethod[] = ['GET', 'POST', 'PUT'];

/** One arrival at /pipe/: tokens are bounded per key and method, so the method is kept. */
export interface PipeSide {
  pub: string;
  dir: PipeDirection;
  role: PipeRole;
  method: PipeMethod;
}

/**
 * A private GET pairs with a public POST/PUT (`in`), a private POST/PUT with a public GET (`out`).
 * `info` is what the keyring says of `key`; undefined (forged) is a 401.
 */
export function pipeSideOf(key: string, info: KeyInfo | undefined, method: PipeMethod): PipeSide {
  if (info === undefined) throw errors.forgedKey();
  const role: PipeRole = method === 'GET' ? 'receiver' : 'sender';
  const isPrivate = info.type === 'private';
  return {
    pub: info.type === 'private' ? info.public : key,
    dir: isPrivate === (role === 'receiver') ? 'in' : 'out',
    role,
    method,
  };
}
