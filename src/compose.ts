// Builds a relay and its HTTP app from a checked configuration and an open backend: what every entry
// point (the server, the serverless export, the tests) shares.
import type express from 'express';
import type { Logger } from 'pino';
import type { Backend } from './backend/open-backend.js';
import type { Config } from './config.js';
import { createApp } from './http/app.js';
import { clientHasher } from './http/client-address.js';
import { createKeyring } from './keys.js';
import { createRelay, type Relay } from './relay.js';
import { createHookSealer } from './webhooks/hook-record.js';
import { createWebhookSender, type WebhookSender } from './webhooks/webhook-sender.js';

export interface ComposeOptions {
  config: Config;
  backend: Backend;
  /** The server secret: signs keys, names the instance, seals webhook records, keys client hashes. */
  secret: string;
  logger: Logger;
  /** Outgoing webhooks; built from the config by default. */
  webhooks?: WebhookSender;
}

/** The relay core on `backend`, and the Express app that serves it. */
export function composeRelay({ config, backend, secret, logger, webhooks }: ComposeOptions): {
  relay: Relay;
  app: express.Express;
} {
  const relay = createRelay({
    backend,
    keyring: createKeyring(secret),
    limits: {
      ttlMs: config.ttlSeconds * 1000,
      maxQueue: config.maxQueue,
      maxFields: config.maxFields,
      hookTtlMs: config.hookTtlSeconds * 1000,
      keyQuota: config.keyQuota,
      resumeMs: config.sseResumeSeconds * 1000,
    },
    webhooks:
      webhooks ??
      createWebhookSender({
        timeoutMs: config.webhookTimeoutMs,
        allowPrivate: config.webhookAllowPrivate,
        logger,
      }),
    hooks: createHookSealer(secret),
  });
  const app = createApp({
    config,
    relay,
    limiters: backend.limiters,
    outage: backend.outage,
    clientOf: clientHasher(secret),
    logger,
  });
  return { relay, app };
}
