// The drop's HTTP on undici's request API: a chunk goes to the socket as it is and comes back in one copy, where
// fetch clones a request body and streams a response through web streams (a third of the CLI's CPU went there).
import { Agent, request } from 'undici';
import type { DropHttp } from '../../sdk/drop.js';

let agent: Agent | undefined;
/** One pool for the process; a long-poll for a chunk waits up to 25 s, well inside these timeouts. */
const dispatcher = () => {
  agent ??= new Agent({ headersTimeout: 120_000, bodyTimeout: 120_000, keepAliveTimeout: 4_000 });
  return agent;
};

/** {@link DropHttp} for Node. */
export const undiciHttp: DropHttp = async (url, { method, body, contentType, signal }) => {
  const answer = await request(url, {
    method: method as 'GET',
    dispatcher: dispatcher(),
    ...(body !== undefined && { body }),
    ...(contentType && { headers: { 'content-type': contentType } }),
    ...(signal && { signal }),
  });
  const header = (name: string) => {
    const value = answer.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  return {
    status: answer.statusCode,
    statusText: '',
    header,
    json: () => answer.body.json(),
    bytes: async () => {
      const parts: Buffer[] = [];
      let length = 0;
      for await (const part of answer.body) {
        parts.push(part as Buffer);
        length += (part as Buffer).length;
      }
      return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, length);
    },
    discard: () => answer.body.dump(),
  };
};
