/**
 * SHA-256 of a file, streamed: how a codes model names its image model, how an index names both,
 * and how a registry download is verified. Kept apart from the sessions so hashing loads no runtime.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}
