// The user's check of a worker's descriptor: its key must have the fingerprint the address names (one hash).
import type { WorkerAddress } from './address.js';
import { fromBase64url } from './encoding.js';
import { verifyFingerprint } from './fingerprint.js';
import type { Descriptor } from './protocol.js';
import type { CipherSuite } from './suite.js';

/** The descriptor at the address is not the worker the id names: nothing was sent. */
export class DescriptorError extends Error {
  /** @param message What was wrong, and what to check. */
  constructor(message: string) {
    super(message);
    this.name = 'DescriptorError';
  }
}

/** Checks the descriptor against the id of the address, before anything is sent to the worker. */
export function checkDescriptor(address: WorkerAddress, value: unknown, suite: CipherSuite): Descriptor {
  const descriptor = value as Partial<Descriptor> | undefined;
  const where = `${address.relay}/public/${address.publicKey.slice(0, 4)}…`;
  if (
    descriptor?.v !== 1 ||
    typeof descriptor.pk !== 'string' ||
    typeof descriptor.id !== 'string' ||
    !Number.isInteger(descriptor.level) ||
    !Number.isInteger(descriptor.counter)
  ) {
    throw new DescriptorError(`What is published at ${where} is not a worker descriptor.`);
  }
  let publicKey: Uint8Array;
  try {
    publicKey = fromBase64url(descriptor.pk);
  } catch {
    throw new DescriptorError(`The descriptor at ${where} holds no valid key.`);
  }
  if (
    publicKey.length !== 32 ||
    descriptor.id.toUpperCase() !== address.id ||
    !verifyFingerprint(publicKey, address.id, descriptor.level as number, descriptor.counter as number, suite)
  ) {
    throw new DescriptorError(
      `The worker key published at ${where} does not have the fingerprint ${address.id}: it is not the worker ` +
        'you named, so nothing was sent. Check the address, or ask its owner whether the worker changed.',
    );
  }
  return descriptor as Descriptor;
}
