// The SDK's end-to-end crypto (served as /sdk/deadrop-crypto.js): the protocol module of sdk/e2e/, on @noble.
export * from './e2e/index.js';
