// The SDK's end-to-end crypto (served as /sdk/deadrop-crypto.js): the protocol of sdk/e2e/ on @noble unless told otherwise.

import type { CipherSuite, RawKeyPair, SealRequestInput } from './e2e/index.js';
import * as e2e from './e2e/index.js';
import { nobleSuite } from './e2e/noble-suite.js';

export * from './e2e/index.js';

// Each function of the protocol with its suite last and @noble's by default: what a page needs, in one file.
// Node passes the native suite of sdk/e2e/native-suite.ts for the same bytes, ten times faster.

/** A worker's identity: an X25519 key pair. */
export const generateWorkerKeys = (suite: CipherSuite = nobleSuite) => e2e.generateWorkerKeys(suite);
/** A user's identity: an Ed25519 key pair that signs requests. */
export const generateUserKeys = (suite: CipherSuite = nobleSuite) => e2e.generateUserKeys(suite);
/** A random 32-byte key for sealed frames, to send inside a sealed request or response. */
export const generateFrameKey = (suite: CipherSuite = nobleSuite) => e2e.generateFrameKey(suite);
/** Seals a request for a worker; keep `responseKey` to open the answer. */
export const sealRequest = (input: SealRequestInput, suite: CipherSuite = nobleSuite) =>
  e2e.sealRequest(input, suite);
/** Opens a request sealed for this worker and checks the user's signature; a SealError otherwise. */
export const openRequest = <T = unknown>(
  envelope: unknown,
  worker: RawKeyPair,
  suite: CipherSuite = nobleSuite,
) => e2e.openRequest<T>(envelope, worker, suite);
/** Seals the answer to request `rid` with the response key. */
export const sealResponse = (
  responseKey: Uint8Array,
  rid: string,
  body: unknown,
  suite: CipherSuite = nobleSuite,
) => e2e.sealResponse(responseKey, rid, body, suite);
/** Opens the answer to request `rid`; a SealError when it answers another or was changed. */
export const openResponse = <T = unknown>(
  responseKey: Uint8Array,
  rid: string,
  envelope: unknown,
  suite: CipherSuite = nobleSuite,
) => e2e.openResponse<T>(responseKey, rid, envelope, suite);
/** Seals an answer, in parts when it is large. */
export const sealAnswer = (
  responseKey: Uint8Array,
  rid: string,
  answer: e2e.Answer,
  suite: CipherSuite = nobleSuite,
) => e2e.sealAnswer(responseKey, rid, answer, suite);
/** Opens an answer, taking its parts with `take` when it announces some. */
export const openAnswer = (
  responseKey: Uint8Array,
  rid: string,
  envelope: unknown,
  take: (uid: string) => Promise<unknown>,
  suite: CipherSuite = nobleSuite,
) => e2e.openAnswer(responseKey, rid, envelope, take, suite);
/** A sealer of frames under `key`, with a fresh random nonce prefix. */
export const createFrameSealer = (key: Uint8Array, suite: CipherSuite = nobleSuite) =>
  e2e.createFrameSealer(key, suite);
/** An opener of frames sealed under `key`. */
export const createFrameOpener = (key: Uint8Array, suite: CipherSuite = nobleSuite) =>
  e2e.createFrameOpener(key, suite);
/** A TransformStream that seals bytes into frames, ending with a final frame. */
export const sealStream = (key: Uint8Array, suite: CipherSuite = nobleSuite) => e2e.sealStream(key, suite);
/** A TransformStream that opens sealed frames; it errors on tampering and on a stream cut short. */
export const openStream = (key: Uint8Array, suite: CipherSuite = nobleSuite) => e2e.openStream(key, suite);
/** The Deadbox fingerprint of a public key: level 21 and 8 pairs by default (DESIGN §7). */
export const fingerprint = (publicKey: Uint8Array, level = 21, length = 8, suite: CipherSuite = nobleSuite) =>
  e2e.fingerprint(publicKey, level, length, suite);
/** Whether `id` is the fingerprint of `publicKey` at `level` with `counter` (one hash). */
export const verifyFingerprint = (
  publicKey: Uint8Array,
  id: string,
  level: number,
  counter: number,
  suite: CipherSuite = nobleSuite,
) => e2e.verifyFingerprint(publicKey, id, level, counter, suite);
/** Checks a worker's descriptor against the id of its address, before anything is sent to it. */
export const checkDescriptor = (
  address: e2e.WorkerAddress,
  value: unknown,
  suite: CipherSuite = nobleSuite,
) => e2e.checkDescriptor(address, value, suite);
