// The wake-on-LAN receiver: a magic packet (6 × 0xFF, then the MAC 16 times) over UDP to a configured target.
import { createSocket } from 'node:dgram';
import { WorkerError } from '../../sdk/e2e/protocol.js';
import type { WolConfig, WolTarget } from './receiver-config.js';

/** The 102 bytes that wake the machine with `mac`. */
export function magicPacket(mac: Buffer): Buffer {
  if (mac.length !== 6) throw new RangeError('A MAC address is 6 bytes.');
  return Buffer.concat([Buffer.alloc(6, 0xff), ...Array.from({ length: 16 }, () => mac)]);
}

/** Sends the magic packet for `target` from a fresh UDP socket with broadcast allowed. */
export async function sendMagicPacket(target: WolTarget): Promise<void> {
  const socket = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      // setBroadcast needs a bound socket.
      socket.bind(0, () => {
        socket.setBroadcast(true);
        socket.send(magicPacket(target.mac), target.port, target.address, (error) =>
          error ? reject(error) : resolve(),
        );
      });
    });
  } finally {
    socket.close();
  }
}

/** The wake-on-LAN receiver of one worker. */
export interface WolReceiver {
  readonly names: readonly string[];
  /** Wakes the target `name`; throws a WorkerError for an unknown one. */
  wake(name: unknown): Promise<{ target: string; mac: string }>;
}

export function createWolReceiver(config: WolConfig): WolReceiver {
  return {
    names: [...config.targets.keys()],
    async wake(name) {
      const target = typeof name === 'string' ? config.targets.get(name) : undefined;
      if (!target)
        throw new WorkerError(
          'not_found',
          `The worker has no wake-on-LAN target named ${JSON.stringify(name)}.`,
        );
      await sendMagicPacket(target).catch((error: NodeJS.ErrnoException) => {
        throw new WorkerError(
          'failed',
          `The magic packet could not be sent (${error.code ?? error.message}).`,
        );
      });
      return {
        target: name as string,
        mac: [...target.mac].map((byte) => byte.toString(16).padStart(2, '0')).join(':'),
      };
    },
  };
}
