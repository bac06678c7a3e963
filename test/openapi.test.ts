// The OpenAPI description (api-docs/openapi.yaml) against the routes the app really mounts.
import { readFileSync } from 'node:fs';
import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { openTestRelay, type TestRelay } from './helpers.js';

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

interface Operation {
  operationId?: string;
  responses?: Record<string, unknown>;
}
type PathItem = Partial<Record<(typeof HTTP_METHODS)[number], Operation>>;
interface Spec {
  openapi: string;
  servers: { url: string }[];
  paths: Record<string, PathItem>;
}

/** The part of a router 2.x layer this test reads (@types/express does not declare `route.methods`). */
interface RouterLayer {
  route?: { path: string; methods: Record<string, boolean> };
  /** A mounted router (pipes, pages) has a stack of its own. */
  handle?: { stack?: RouterLayer[] };
}

const spec = parse(readFileSync(new URL('../api-docs/openapi.yaml', import.meta.url), 'utf8')) as Spec;

/** "GET /public/{key}" for every operation the spec documents. */
function documentedOperations(): string[] {
  return Object.entries(spec.paths).flatMap(([path, item]) =>
    HTTP_METHODS.filter((method) => item[method] !== undefined).map(
      (method) => `${method.toUpperCase()} ${path}`,
    ),
  );
}

/**
 * "GET /public/{key}" for every method a route of the app handles. `_all` (the 405 fallback) is not an
 * operation. A route's `methods` holds `head` only when a route declares `.head()` itself (here: the 405 on
 * consuming reads), not for the HEAD that Express answers with GET, so explicit ones are kept.
 */
function mountedOperations(app: express.Express): string[] {
  const walk = (layers: RouterLayer[]): RouterLayer[] =>
    layers.flatMap((layer) => (layer.route ? [layer] : layer.handle?.stack ? walk(layer.handle.stack) : []));
  return walk(app.router.stack as unknown as RouterLayer[]).flatMap(({ route }) => {
    if (!route) return [];
    const path = route.path.replace(/:(\w+)/g, '{$1}');
    return Object.keys(route.methods)
      .filter((method) => method !== '_all' && route.methods[method])
      .map((method) => `${method.toUpperCase()} ${path}`);
  });
}

describe('the OpenAPI description', () => {
  const documented = documentedOperations();
  let relay: TestRelay;
  let mounted: string[] = [];
  beforeAll(async () => {
    relay = await openTestRelay('memory');
    mounted = mountedOperations(relay.app);
  });
  afterAll(() => relay.dispose());

  it('is an OpenAPI 3.1 document', () => {
    expect(spec.openapi.startsWith('3.1')).toBe(true);
  });

  it('finds the routes the app mounts', () => {
    // Guards the walk itself: a change in the router's internals must not make the next tests vacuous.
    expect(mounted).toContain('GET /keys');
    expect(mounted).toContain('POST /private/{key}/{uid}');
    expect(mounted.length).toBeGreaterThanOrEqual(13);
  });

  it('every mounted route is documented', () => {
    const missing = mounted.filter((operation) => !documented.includes(operation));
    expect(missing, `mounted but missing from api-docs/openapi.yaml: ${missing.join(', ')}`).toEqual([]);
  });

  it('documents no route that the app does not mount', () => {
    const extra = documented.filter((operation) => !mounted.includes(operation));
    expect(extra, `documented in api-docs/openapi.yaml but not mounted: ${extra.join(', ')}`).toEqual([]);
  });

  it('every operation has an operationId and documents at least one 4xx answer', () => {
    const problems = Object.entries(spec.paths).flatMap(([path, item]) =>
      HTTP_METHODS.flatMap((method) => {
        const operation = item[method];
        if (!operation) return [];
        const name = `${method.toUpperCase()} ${path}`;
        const found: string[] = [];
        if (!operation.operationId) found.push(`${name} has no operationId`);
        if (!Object.keys(operation.responses ?? {}).some((status) => /^4(\d\d|XX)$/.test(status))) {
          found.push(`${name} documents no 4xx response`);
        }
        return found;
      }),
    );
    expect(problems).toEqual([]);
  });

  it('gives every operation a distinct operationId', () => {
    const ids = Object.values(spec.paths).flatMap((item) =>
      HTTP_METHODS.flatMap((method) => item[method]?.operationId ?? []),
    );
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('/openapi.json', () => {
  const served = async (publicUrl?: string) => {
    const relay = await openTestRelay('memory', { config: { publicUrl } });
    try {
      return (await relay.agent.get('/openapi.json').expect(200).expect('Content-Type', /json/)).body as Spec;
    } finally {
      await relay.dispose();
    }
  };

  it('names the relay it was fetched from as its one server: the relative "/"', async () => {
    const document = await served();
    expect(document.servers.map((server) => server.url)).toEqual(['/']);
    expect(document.paths).toEqual(spec.paths);
  });

  it('names DEADROP_PUBLIC_URL as its one server when that is set', async () => {
    const document = await served('https://relay.example/deadrop');
    expect(document.servers.map((server) => server.url)).toEqual(['https://relay.example/deadrop']);
  });
});
