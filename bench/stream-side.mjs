// bench:drop's baseline side, on the built client as the drop CLI is: `node bench/stream-side.mjs send|get
// <relay> <file> <key>` moves the file through /pipe/<key> and the relay's /stream/, nothing stored or sealed.
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createNodePipe } from '../dist/src/client/node-pipe.js';

const [command, relay, path, key] = process.argv.slice(2);
const pipe = createNodePipe(relay);
if (command === 'send') {
  await pipe.send(
    key,
    createReadStream(path, { highWaterMark: 1024 * 1024 }),
    undefined,
    (await stat(path)).size,
  );
} else {
  await pipeline(await pipe.receive(key), createWriteStream(path));
}
