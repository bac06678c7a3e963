// CORS (DESIGN §4): the one header on every answer, and the cors package's own preflight.
import cors from 'cors';
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { allowAnyOrigin } from '../src/http/cors.js';

const appWith = (middleware: express.RequestHandler) =>
  express()
    .use(middleware)
    .get('/x', (_req, res) => {
      res.send('ok');
    });

describe('allowAnyOrigin', () => {
  it('sets Access-Control-Allow-Origin: * on an answer, and nothing else of CORS', async () => {
    const res = await request(appWith(allowAnyOrigin())).get('/x').set('Origin', 'https://a.example');
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(Object.keys(res.headers).filter((name) => name.startsWith('access-control-'))).toEqual([
      'access-control-allow-origin',
    ]);
    expect(res.headers.vary).toBeUndefined();
  });

  it('answers a preflight exactly as the cors package does', async () => {
    const preflight = (app: express.Express) =>
      request(app)
        .options('/x')
        .set('Origin', 'https://a.example')
        .set('Access-Control-Request-Method', 'POST')
        .set('Access-Control-Request-Headers', 'x-a, content-type');
    const ours = await preflight(appWith(allowAnyOrigin())).expect(204);
    const theirs = await preflight(appWith(cors())).expect(204);
    const { date: _ours, ...oursHeaders } = ours.headers;
    const { date: _theirs, ...theirsHeaders } = theirs.headers;
    expect(oursHeaders).toEqual(theirsHeaders);
    expect(ours.headers['access-control-allow-headers']).toBe('x-a, content-type');
  });
});
