// The sender's view of a drop it sent: whether it was fetched, and revoking what is left of it.
import { CLAIM_UID, chunkUid, createWindow, type DropOwner, UPLOADED_UID } from './common.js';
import { LIVE_UID } from './live.js';
import { checkRecord, type DropRecord } from './record.js';
import { type DropHttp, dropTransport } from './transport.js';

/**
 * What the sender sees of a drop: `waiting` (nobody began fetching it), `fetching` (a receiver claimed it
 * and has not had all of it yet, or stopped), `fetched` (a receiver had the whole drop; `fetchedAt` says
 * when) or `gone` (revoked, expired, or its upload failed).
 */
export interface DropStatus {
  state: 'waiting' | 'fetching' | 'fetched' | 'gone';
  /** Seconds until what is left of the drop expires; 0 when it is fetched or gone. */
  expiresIn: number;
  /** When the receiver had the whole drop (ms since the epoch). */
  fetchedAt?: number;
}

type FollowOptions = { fetch?: typeof fetch; http?: DropHttp; signal?: AbortSignal };

/** Where the drop stands, from its record and its claim; nothing of it is read or consumed. */
export async function dropStatus(owner: DropOwner, options: FollowOptions = {}): Promise<DropStatus> {
  const t = dropTransport(owner.relay, options);
  const publicKey = await t.publicKeyOf(owner.privateKey);
  const stored = await t.readRecord(publicKey);
  if (stored === undefined) return { state: 'gone', expiresIn: 0 };
  const record: DropRecord = checkRecord(stored);
  if (record.fetched !== undefined) return { state: 'fetched', expiresIn: 0, fetchedAt: record.fetched };
  const [claim, left] = await Promise.all([
    t.fieldTtl(owner.privateKey, CLAIM_UID),
    t.fieldTtl(owner.privateKey, chunkUid(owner.chunks - 1)),
  ]);
  if (claim > 0) return { state: 'waiting', expiresIn: claim };
  return { state: 'fetching', expiresIn: left };
}

/** Deletes whatever of the drop is still on the relay: its record, its claim, its live lane's key and its chunks. */
export async function revokeDrop(owner: DropOwner, options: FollowOptions = {}): Promise<void> {
  const t = dropTransport(owner.relay, options);
  await t.unpublishRecord(owner.privateKey);
  await t.deleteField(owner.privateKey, CLAIM_UID);
  await t.deleteField(owner.privateKey, UPLOADED_UID);
  await t.deleteField(owner.privateKey, LIVE_UID);
  const window = createWindow(8);
  for (let index = 0; index < owner.chunks; index++) {
    await window.add(t.deleteField(owner.privateKey, chunkUid(index)));
  }
  await window.finish();
}
