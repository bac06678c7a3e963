// The baseline for bench/relay.ts: a bare Express 5 hello world on 127.0.0.1:$PORT, in its own process.
import express from 'express';

const app = express();
app.get('/', (_req, res) => {
  res.send('hello world');
});
app.listen(Number(process.env.PORT), '127.0.0.1', (error) => {
  if (error) throw error;
});
// A clean exit on SIGTERM, so that `--cpu-prof` (bench:profile hello) writes its profile.
process.once('SIGTERM', () => process.exit(0));
