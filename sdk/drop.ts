// Drops: a file sealed in chunks on one-to-one fields, fetched once; the key travels only in the link's fragment.
// The parts: common.ts (links, tokens, errors), record.ts (what the drop's key publishes), send.ts, receive.ts,
// follow.ts (status, revoke) and live.ts (chunks streamed through the relay's pipe while both ends are online);
// the chunk format is the e2e protocol's (e2e/drop-chunks.ts).

export { type BrowserSink, forgetKeptFetch, openBrowserSink } from './drop/browser-sink.js';
export {
  type Argon2Params,
  DropError,
  type DropErrorCode,
  type DropLink,
  type DropManifest,
  type DropOwner,
  formatDropLink,
  formatOwnerToken,
  parseDropLink,
  parseOwnerToken,
} from './drop/common.js';
export { type DropStatus, dropStatus, revokeDrop } from './drop/follow.js';
export type { DropPipe } from './drop/live.js';
export {
  type DropSink,
  dropNeedsPassword,
  type FetchDropOptions,
  type FetchWait,
  type KeptFetch,
  type OpenDropOptions,
  type OpenedDrop,
  openDrop,
} from './drop/receive.js';
export { DEFAULT_ARGON2 } from './drop/record.js';
export {
  type DropSource,
  type ReadyDrop,
  type SendDropOptions,
  type SendWait,
  type SentDrop,
  sendDrop,
} from './drop/send.js';
export {
  type DropHttp,
  type DropHttpAnswer,
  type DropHttpInit,
  type DropWait,
  fetchHttp,
  type RelayLimits,
} from './drop/transport.js';
export { DROP_BLOB_LIMIT, DROP_CHUNK_SIZE } from './e2e/drop-chunks.js';
