// The one error of the end-to-end protocol: something sealed did not open, or was not what it claims to be.

/** Thrown when an envelope, a frame or a chunk is malformed, tampered with, truncated or for someone else. */
export class SealError extends Error {
  /** @param message What was wrong. */
  constructor(message: string) {
    super(message);
    this.name = 'SealError';
  }
}
