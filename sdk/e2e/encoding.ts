// The protocol's text encodings: base64url and Base32 from @scure/base, canonical JSON (RFC 8785) from canonicalize.
import { base32nopad, base64urlnopad } from '@scure/base';
import canonicalize from 'canonicalize';
import { SealError } from './seal-error.js';

/** base64url without padding. */
export const toBase64url = (bytes: Uint8Array): string => base64urlnopad.encode(bytes);

/** Bytes of base64url text; anything that is not strict, canonical base64url is a SealError. */
export function fromBase64url(text: string): Uint8Array {
  try {
    return base64urlnopad.decode(text);
  } catch {
    throw new SealError('A field is not canonical base64url.');
  }
}

/** RFC 4648 Base32, uppercase, without padding. */
export const toBase32 = (bytes: Uint8Array): string => base32nopad.encode(bytes);

/**
 * JSON with object keys sorted at every depth (RFC 8785, JCS): the same value always gives the same bytes.
 * Undefined fields are left out; a value JSON cannot carry faithfully (NaN, a lone surrogate) is a SealError.
 */
export function canonicalJson(value: unknown): string {
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (error) {
    throw new SealError(`The value has no canonical JSON form (${(error as Error).message}).`);
  }
  if (text === undefined) throw new SealError('The value has no JSON form.');
  return text;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 bytes of `text`. */
export const utf8 = (text: string): Uint8Array => encoder.encode(text);

/** The JSON value in UTF-8 `bytes`; bytes that are not UTF-8 JSON are a SealError. */
export function parseJsonBytes<T>(bytes: Uint8Array, what: string): T {
  try {
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch {
    throw new SealError(`The ${what} does not hold JSON.`);
  }
}
