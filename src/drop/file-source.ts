// What `drop send` reads: the file through one handle, each chunk in one read (a Blob of a file reads it 64 KiB
// at a time and joins the pieces), and a file that changes while it is sent is refused, as a Blob refuses it.
import { type FileHandle, open } from 'node:fs/promises';
import { DropError, type DropSource } from '../../sdk/drop.js';

export interface FileSource extends DropSource {
  close(): Promise<void>;
}

const changed = () =>
  new DropError(
    'file_changed',
    'The file changed while it was being sent; send it again once it is done changing.',
  );

/** Opens `path` as a drop's source; each read checks the file's size and modification time are still those. */
export async function openFileSource(path: string): Promise<FileSource> {
  const handle: FileHandle = await open(path);
  let size: number;
  let modified: number;
  try {
    ({ size, mtimeMs: modified } = await handle.stat());
  } catch (error) {
    await handle.close();
    throw error;
  }
  return {
    size,
    async read(start, end) {
      const bytes = Buffer.allocUnsafe(end - start);
      let filled = 0;
      while (filled < bytes.length) {
        const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, start + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      // After the read: a change that began before it or while it ran shows in the file's size or time.
      const now = await handle.stat();
      if (filled !== bytes.length || now.size !== size || now.mtimeMs !== modified) throw changed();
      return bytes;
    },
    close: () => handle.close(),
  };
}
