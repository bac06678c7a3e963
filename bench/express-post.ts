// A reference for bench/relay.ts: the least an Express 5 app does to take a JSON POST (read the body within a
// limit, check it is JSON, answer), on 127.0.0.1:$PORT in its own process. Measured like the relay, against the
// hello world, it shows how much of the hello world's rate a POST leaves before any relay work.
import express from 'express';

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.post('/public/:key', express.raw({ type: () => true, limit: 65_536 }), (req, res) => {
  JSON.parse((req.body as Buffer).toString('utf8'));
  res.type('json').send('{"ok":true}');
});
app.get('/', (_req, res) => {
  res.send('ready');
});
app.listen(Number(process.env.PORT), '127.0.0.1', (error) => {
  if (error) throw error;
});
process.once('SIGTERM', () => process.exit(0));
