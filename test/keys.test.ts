// Keys (DESIGN §2): derivation, type detection, forgery resistance and the instance id.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeyring } from '../src/keys.js';

const secret = 'test-secret-0123456789';
const keyring = createKeyring(secret);

describe('keyring', () => {
  it('builds keys exactly as DESIGN §2 says', () => {
    const pair = keyring.issue();
    const rand = pair.private.slice(10);
    const sig = (type: string, r: string) =>
      createHmac('sha256', secret).update(`${type}:${r}`).digest('base64url').slice(0, 10);
    expect(pair.private).toBe(sig('private', rand) + rand);
    const pubRand = createHash('sha256').update(`public:${rand}`).digest('base64url').slice(0, 22);
    expect(pair.public).toBe(sig('public', pubRand) + pubRand);
    expect(keyring.id).toBe(createHmac('sha256', secret).update('id').digest('base64url').slice(0, 8));
  });

  it('tells a private key with its public key, and a public key', () => {
    const pair = keyring.issue();
    expect(keyring.inspect(pair.private)).toEqual({ type: 'private', public: pair.public });
    expect(keyring.inspect(pair.public)).toEqual({ type: 'public' });
  });

  it('gives the same verdicts again, with more keys seen in between than it remembers', () => {
    const pair = keyring.issue();
    const forged = `${pair.private.slice(0, 9)}${pair.private[9] === 'A' ? 'B' : 'A'}${pair.private.slice(10)}`;
    const verdicts = () => [
      keyring.inspect(pair.private),
      keyring.inspect(pair.public),
      keyring.inspect(forged),
    ];
    const first = verdicts();
    expect(first).toEqual([{ type: 'private', public: pair.public }, { type: 'public' }, undefined]);
    expect(verdicts()).toEqual(first);
    for (let n = 0; n < 10_001; n++) keyring.inspect(keyring.issue().public);
    expect(verdicts()).toEqual(first);
  });

  it('issues a different pair every time', () => {
    const privates = new Set(Array.from({ length: 1000 }, () => keyring.issue().private));
    expect(privates.size).toBe(1000);
  });

  it('accepts none of 20 000 random and mutated keys', () => {
    const pair = keyring.issue();
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    let accepted = 0;
    for (let n = 0; n < 10_000; n++) {
      if (keyring.inspect(randomBytes(24).toString('base64url'))) accepted++;
      const base = n % 2 ? pair.private : pair.public;
      const at = n % 32;
      const replacement = alphabet[(alphabet.indexOf(base[at] as string) + 1 + (n % 63)) % 64] as string;
      if (keyring.inspect(base.slice(0, at) + replacement + base.slice(at + 1))) accepted++;
    }
    expect(accepted).toBe(0);
    for (const bad of [
      '',
      'short',
      `${pair.private}x`,
      pair.private.slice(1),
      `${pair.private.slice(0, 31)}=`,
      '\u0000'.repeat(32),
    ]) {
      expect(keyring.inspect(bad)).toBeUndefined();
    }
  });

  it('does not accept the keys of a relay with another secret', () => {
    const other = createKeyring('another-secret-0123456789');
    expect(other.inspect(keyring.issue().private)).toBeUndefined();
    expect(other.id).not.toBe(keyring.id);
  });
});
