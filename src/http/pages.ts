// The relay's own pages: a home page, the API reference (Swagger UI, served locally), the OpenAPI
// document as JSON, and the examples. Nothing is loaded from anywhere but the relay.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import express, { type Router } from 'express';
import { parse } from 'yaml';
import type { Config } from '../config.js';
import { packageRoot } from '../package-root.js';

const ROOT = packageRoot();
const KEY_PATTERN = /^[A-Za-z0-9_-]{32}$/;

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Fills `{{NAME}}` placeholders with escaped values. */
const render = (template: string, values: Record<string, string | number>) =>
  template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => escapeHtml(String(values[name] ?? '')));

/** The `?pub=` of a form page's request, when it is shaped like a key. */
const publicKeyOf = (req: express.Request) =>
  typeof req.query.pub === 'string' && KEY_PATTERN.test(req.query.pub) ? req.query.pub : undefined;

/** The request's own base URL (behind a trusted proxy, the client's view of it). */
const baseOf = (req: express.Request) => `${req.protocol}://${req.get('host')}`;

/**
 * The OpenAPI document with this relay as its one server: its DEADROP_PUBLIC_URL, or the relative `/`
 * (the instance the document was fetched from, whatever name and port reached it), so that the
 * reference's "Try it out" calls this relay.
 */
function describeThisInstance(spec: Record<string, unknown>, publicUrl: string | undefined) {
  const server = publicUrl
    ? { url: publicUrl, description: 'This relay (DEADROP_PUBLIC_URL).' }
    : { url: '/', description: 'This relay: the one that served this document.' };
  return { ...spec, servers: [server] };
}

/** Builds the router for `/`, `/assets`, `/docs`, `/drop`, `/box`, `/openapi.json`, `/examples` and `/sdk`. */
export function createPagesRouter({ config, id }: { config: Config; id: string }): Router {
  const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
  const home = render(read('public/index.html'), {
    ID: id,
    TTL: config.ttlSeconds,
    BODY_LIMIT: config.bodyLimit,
    MAX_QUEUE: config.maxQueue,
    MAX_FIELDS: config.maxFields,
    RATE_LIMIT:
      config.rateLimit === 0 ? 'unlimited' : `${config.rateLimit} per ${config.rateWindowSeconds} s`,
  });
  const docs = read('public/docs.html');
  const spec = JSON.stringify(describeThisInstance(parse(read('api-docs/openapi.yaml')), config.publicUrl));
  const form = read('examples/form.html');
  const thanks = read('examples/thanks.html');
  const oops = read('examples/oops.html');
  const drop = read('public/drop.html');
  const box = read('public/box.html');
  const staticOptions = { index: false, fallthrough: true, maxAge: '1h' };

  const router = express.Router();
  router.get('/', (_req, res) => res.type('html').send(home));
  router.get('/favicon.ico', (_req, res) => res.status(204).end());
  router.get('/docs', (_req, res) => res.type('html').send(docs));
  router.get('/drop', (_req, res) => res.type('html').send(drop));
  router.get('/box', (_req, res) => res.type('html').send(box));
  // The /box page's service worker streams downloads to disk; served under /box/ so that its scope can be /box/.
  router.get('/box/sw.js', (_req, res, next) => {
    // Not built (a checkout before `npm run build`): the relay's 404, not a 500.
    res
      .set('cache-control', 'no-cache')
      .type('js')
      .sendFile(join(ROOT, 'dist/public/box-sw.js'), (error) => {
        if (error && !res.headersSent) next();
      });
  });
  router.get('/openapi.json', (_req, res) => res.type('json').send(spec));
  router.get('/examples/form.html', (req, res) => {
    const pub = publicKeyOf(req) ?? 'PUBLIC_KEY';
    const base = baseOf(req);
    const path = `/public/${pub}`;
    // The landing pages get the key too, so that they can link back to this same form.
    const landing = (page: string) => encodeURIComponent(`${base}/examples/${page}.html?pub=${pub}`);
    const action = `${base}${path}?ok=${landing('thanks')}&err=${landing('oops')}`;
    res.type('html').send(render(form, { ACTION: action, PUBLIC_PATH: path }));
  });
  for (const [page, template] of [
    ['thanks', thanks],
    ['oops', oops],
  ] as const) {
    router.get(`/examples/${page}.html`, (req, res) => {
      const pub = publicKeyOf(req);
      const formUrl = `/examples/form.html${pub ? `?pub=${pub}` : ''}`;
      res.type('html').send(render(template, { FORM_URL: formUrl }));
    });
  }
  router.use('/assets', express.static(join(ROOT, 'public/assets'), staticOptions));
  // Copied out of swagger-ui-dist by the build (scripts/copy-swagger-ui.mjs): not a runtime dependency.
  router.use('/docs/assets', express.static(join(ROOT, 'dist/swagger-ui'), staticOptions));
  router.use('/examples', express.static(join(ROOT, 'examples'), staticOptions));
  router.use('/sdk', express.static(join(ROOT, 'dist/public'), staticOptions));
  return router;
}
