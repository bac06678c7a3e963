// What the relay keeps of a webhook: its URL and the private key that signs deliveries, sealed with a key
// derived from the server secret, so a copy of the store alone reveals neither.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

export interface HookRecord {
  url: string;
  /** The private key of the pair: deliveries are signed with it, so only its owner can verify them. */
  signingKey: string;
}

export interface HookSealer {
  seal(record: HookRecord): string;
  /** The record, or undefined when the text was not sealed with this secret or was altered. */
  open(sealed: string): HookRecord | undefined;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** AES-256-GCM under HKDF-SHA256(secret, info "deadrop/hook/1"). */
export function createHookSealer(secret: string): HookSealer {
  const key = Buffer.from(hkdfSync('sha256', secret, 'deadrop', 'deadrop/hook/1', 32));
  return {
    seal(record) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(JSON.stringify(record), 'utf8'), cipher.final()]);
      return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
    },
    open(sealed) {
      try {
        const bytes = Buffer.from(sealed, 'base64url');
        const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
        decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
        const text = Buffer.concat([
          decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)),
          decipher.final(),
        ]);
        const record = JSON.parse(text.toString('utf8')) as HookRecord;
        return typeof record.url === 'string' && typeof record.signingKey === 'string' ? record : undefined;
      } catch {
        return undefined;
      }
    },
  };
}
