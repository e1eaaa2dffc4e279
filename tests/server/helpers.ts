/**
 * Shared fixtures of the server tests: a runtime and app over the tiny test model, fixture images.
 * The test models themselves (tiny random AlexNet, random-projection codes model) are built in
 * testing/models.ts, which bench/ uses too; they are re-exported here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Express } from 'express';
import { createApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import type { ConfigInput } from '../../server/config.js';
import { createLogger } from '../../server/logging.js';
import { createRuntime } from '../../server/services/runtime.js';
import type { Runtime } from '../../server/services/runtime.js';

import { tempDir, testCodesPath, testModelPath } from '../../testing/models.js';

export { FMNIST_LABELS, tempDir, testCodesPath, testModelPath, tinyPreset } from '../../testing/models.js';
export const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
export const DEMO_DIR = new URL('../../server/demo/', import.meta.url).pathname;

export interface TestServer {
  rt: Runtime;
  app: Express;
  dir: string;
  close(): Promise<void>;
}

/** A runtime on the tiny model with its database in a fresh temp dir, and the express app over it. */
export async function startTestServer(over: Partial<Record<keyof ConfigInput, unknown>> = {}): Promise<TestServer> {
  const tmp = tempDir();
  const config = loadConfig({ modelPath: testModelPath(), codesPath: testCodesPath(), dataDir: tmp.path, logLevel: 'silent', demo: false, threads: 2, ...over }, {});
  const logger = createLogger(config.logLevel);
  const rt = await createRuntime(config, logger);
  rt.setReadiness({ ready: true, reason: 'test' });
  const app = createApp({ logger, metrics: rt.metrics, inference: rt.inference, gallery: rt.gallery, jobs: rt.jobs, readiness: rt.readiness }, config);
  return {
    rt,
    app,
    dir: tmp.path,
    async close() {
      await rt.close();
      tmp.cleanup();
    },
  };
}

export const image = (name: string): Buffer => readFileSync(join(FIXTURES, 'images', name));
export const demoImage = (rel: string): Buffer => readFileSync(join(DEMO_DIR, rel));

/** A truncated JPEG: valid magic, the decoder fails ("premature end of JPEG image"). */
export const brokenJpeg = (): Buffer => image('dog.jpg').subarray(0, 2048);

/** The start of an iPhone HEIC file (ftyp box, brand heic): enough for format sniffing. */
export function heicHeader(): Buffer {
  const ftyp = Buffer.alloc(24);
  ftyp.writeUInt32BE(24, 0);
  ftyp.write('ftypheic', 4, 'latin1');
  ftyp.writeUInt32BE(0, 12);
  ftyp.write('mif1heic', 16, 'latin1');
  return Buffer.concat([ftyp, Buffer.alloc(200, 0)]);
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A decompression bomb's header: a PNG claiming width × height 8-bit gray pixels (the data is absent). */
export function hugePngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 0;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), pngChunk('IEND', Buffer.alloc(0))]);
}
