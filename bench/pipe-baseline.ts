// bench/pipe.ts's baseline: the least a relay can do, `req.pipe(res)` between a POST and a GET on one path.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

interface Side {
  req: IncomingMessage;
  res: ServerResponse;
}

const senders = new Map<string, Side>();
const receivers = new Map<string, Side>();

const connect = (sender: Side, receiver: Side) => {
  receiver.res.writeHead(200, {
    'content-type': sender.req.headers['content-type'] ?? 'application/octet-stream',
  });
  sender.req.pipe(receiver.res);
  sender.req.on('end', () => sender.res.end('Done.\n'));
};

createServer({ requestTimeout: 0 }, (req, res) => {
  const path = req.url ?? '/';
  if (path === '/rss') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ rss: process.memoryUsage.rss() }));
    return;
  }
  const side = { req, res };
  if (req.method === 'GET') {
    const sender = senders.get(path);
    if (sender) {
      senders.delete(path);
      connect(sender, side);
    } else receivers.set(path, side);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  const receiver = receivers.get(path);
  if (receiver) {
    receivers.delete(path);
    connect(side, receiver);
  } else senders.set(path, side);
}).listen(Number(process.env.PORT), '127.0.0.1');
