// Test fixture for drops: the real app on a real port, with its blob settings, serving the drop page.
import { execFileSync } from 'node:child_process';
import express from 'express';
import type { Config } from '../src/config.js';
import { listen, openTestRelay, type StoreKind, type TestRelay } from './helpers.js';

/** The relay's defaults for blobs: 1 MiB per blob, 64 MiB per key pair. */
export const BLOB_LIMIT = 1_048_576;
export const KEY_QUOTA = 64 * 1_048_576;

export interface DropRelay extends TestRelay {
  url: string;
  close: () => Promise<void>;
}

/** A relay on 127.0.0.1; with `page`, the drop page's bundle is built first, as `npm run build` does. */
export async function openDropRelay(
  kind: StoreKind = 'sqlite',
  options: {
    blobLimit?: number;
    keyQuota?: number;
    config?: Partial<Config>;
    dataDir?: string;
    /** Share it to make two instances of one relay (on Redis). */
    secret?: string;
    page?: boolean;
    /** Sees every request as the relay gets it (method, URL and headers); the relay waits for it. */
    onRequest?: (req: express.Request) => void | Promise<void>;
  } = {},
): Promise<DropRelay> {
  if (options.page) execFileSync('node', ['scripts/build-sdk.mjs'], { stdio: 'ignore' });
  const relay = await openTestRelay(kind, {
    ...(options.dataDir !== undefined && { dataDir: options.dataDir }),
    ...(options.secret !== undefined && { secret: options.secret }),
    config: {
      blobLimit: options.blobLimit ?? BLOB_LIMIT,
      keyQuota: options.keyQuota ?? KEY_QUOTA,
      ...options.config,
    },
  });
  let app: express.Express = relay.app;
  const { onRequest } = options;
  if (onRequest) {
    app = express();
    app.locals.pipes = relay.app.locals.pipes;
    app.use(async (req, _res, next) => {
      await onRequest(req);
      next();
    });
    app.use(relay.app);
  }
  const server = await listen(app);
  return {
    ...relay,
    url: server.url,
    close: async () => {
      await server.close();
      await relay.dispose();
    },
  };
}

/** `link` with the character at `index` of its fragment changed: a link typed with one mistake. */
export function mistype(link: string, index: number): string {
  const at = link.indexOf('#') + 1 + index;
  return link.slice(0, at) + (link[at] === 'A' ? 'B' : 'A') + link.slice(at + 1);
}
