// One-to-one blobs: application/octet-stream bodies up to DEADROP_BLOB_LIMIT, within DEADROP_KEY_QUOTA per key pair.
import { parse as parseContentType } from 'content-type';
import express, { type Request, type RequestHandler, type Router } from 'express';
import { errors, type RelayError } from '../errors.js';
import { createKeyring } from '../keys.js';
import type { Relay } from '../relay.js';
import { createBlobLedger, decodeBlob, encodeBlob } from '../store/blob-store.js';
import type { Store } from '../store/store.js';
import { clientGone, waitMs } from './query.js';
import { sendDone } from './redirects.js';

/** The settings of blobs (DEADROP_BLOB_LIMIT, DEADROP_KEY_QUOTA), in bytes; a blob limit of 0 turns blobs off. */
export interface BlobLimits {
  readonly blobLimit: number;
  readonly keyQuota: number;
}

/** What {@link createBlobRouter} needs: the app's relay, so that keys, waiting and wake-ups stay the relay's. */
export interface BlobRouterDeps {
  config: BlobLimits;
  relay: Pick<Relay, 'putField' | 'takeField' | 'deleteField' | 'limits'>;
  store: Store;
  secret: string;
  /** The rate limit of public reads (the app's `limit.publicRead`). */
  readLimit?: RequestHandler;
}

const UID_PATTERN = /^[A-Za-z0-9._~-]{1,64}$/; // as in relay.ts, checked before the body is read

const isBlobRequest = (req: Request): boolean => {
  const header = req.headers['content-type'];
  if (!header) return false;
  try {
    return parseContentType(header).type === 'application/octet-stream';
  } catch {
    return false;
  }
};

/** Maps body-parser's failures (by their documented `type`) to the catalog. */
function readError(error: { type?: string; length?: number; message?: string }, limit: number): RelayError {
  if (error.type === 'entity.too.large') return errors.blobTooLarge(limit, error.length);
  if (error.type === 'encoding.unsupported') {
    return errors.unsupportedEncoding('This Content-Encoding is not accepted; send the body uncompressed.');
  }
  return errors.malformedBody(error.message ?? 'unknown reason.');
}

/**
 * Routes blobs: `POST /private/<key>/<uid>` with `Content-Type: application/octet-stream` stores the bytes
 * (other types go on to the JSON route), `GET /public/<pub>/<uid>` takes a value and answers a blob as
 * its bytes and anything else as the JSON route would, `DELETE /private/<key>/<uid>` deletes. Mount it
 * before the relay's routes.
 */
export function createBlobRouter({ config, relay, store, secret, readLimit }: BlobRouterDeps): Router {
  const keyring = createKeyring(secret);
  const ledger = createBlobLedger(store);
  const readRaw = express.raw({ type: () => true, limit: Math.max(1, config.blobLimit), inflate: false });
  const passThrough: RequestHandler = (_req, _res, next) => next();
  const ownedBy = (key: string): string => {
    const info = keyring.inspect(key);
    if (!info) throw errors.forgedKey();
    if (info.type !== 'private') throw errors.wrongKeyType('private');
    return info.public;
  };
  const forget = (pub: string, uid: string) => ledger.release(pub, uid).catch(() => {}); // the count may stay high, never low

  const router = express.Router();

  router.post('/private/:key/:uid', (req, res, next) => {
    if (config.blobLimit === 0 || !isBlobRequest(req)) {
      next();
      return;
    }
    const { key, uid } = req.params;
    const pub = ownedBy(key);
    if (!UID_PATTERN.test(uid)) throw errors.badUid();
    readRaw(req, res, async (error?: unknown) => {
      try {
        if (error) throw readError(error as { type?: string }, config.blobLimit);
        const bytes: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const { accepted, used } = await ledger.reserve(
          pub,
          uid,
          bytes.length,
          relay.limits.ttlMs,
          config.keyQuota,
        );
        if (!accepted) throw errors.keyQuotaFull(config.keyQuota, used, bytes.length);
        try {
          await relay.putField(key, uid, encodeBlob(bytes));
        } catch (failure) {
          await forget(pub, uid);
          throw failure;
        }
        sendDone(res);
      } catch (failure) {
        next(failure);
      }
    });
  });

  router.get('/public/:key/:uid', readLimit ?? passThrough, async (req, res, next) => {
    // Express routes HEAD to GET: a HEAD must not consume the value.
    if (req.method === 'HEAD') {
      next();
      return;
    }
    const { key, uid } = req.params as { key: string; uid: string };
    const value = await relay.takeField(key, uid, { waitMs: waitMs(req.query), signal: clientGone(res) });
    const blob = decodeBlob(value);
    if (!blob) {
      res.type('application/json').send(value);
      return;
    }
    await forget(key, uid);
    res.status(200).set({ 'content-type': 'application/octet-stream', 'content-length': blob.length });
    res.end(blob);
  });

  router.delete('/private/:key/:uid', async (req, res) => {
    const { key, uid } = req.params;
    await relay.deleteField(key, uid);
    await forget(ownedBy(key), uid);
    res.status(204).end();
  });

  return router;
}
