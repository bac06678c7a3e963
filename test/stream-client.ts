// Plain node:http requests for streaming tests: the head as soon as it comes, the body read to its end or its cut.
import { type IncomingMessage, request } from 'node:http';
import type { Readable } from 'node:stream';

/** One request without keep-alive; resolves with the response head, the body still to read. */
export function send(
  url: string,
  method: string,
  options: { body?: Readable; headers?: Record<string, string> } = {},
): Promise<IncomingMessage> {
  const req = request(url, { method, agent: false, headers: options.headers });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  if (options.body) {
    // The headers go out now, before the body's first byte, as a streaming client sends them.
    req.flushHeaders();
    options.body.pipe(req);
  } else req.end();
  return response;
}

/** The whole body, whether it ended cleanly (false: the connection was cut first), and when it closed. */
export function readBody(
  response: IncomingMessage,
): Promise<{ body: Buffer; complete: boolean; at: number }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('error', () => {});
    response.once('close', () =>
      resolve({ body: Buffer.concat(chunks), complete: response.complete, at: performance.now() }),
    );
  });
}
