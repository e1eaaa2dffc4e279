/**
 * Shared fixtures of the server tests: a small random AlexNet (real ONNX, exported by our own
 * exporter, narrow conv widths so a 10-crop batch runs in milliseconds) and a random-projection
 * codes model, both written once per machine to the temp dir and reused by every test file.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alexnetPreset, smallPreset } from '../../model/architecture.js';
import type { Preset } from '../../model/architecture.js';
import { exportOnnx } from '../../model/onnx/index.js';
import { DataType, encodeModel, floatTensor, modelProto, node, valueInfo } from '../../model/onnx/proto.js';
import { mulberry32, gaussianFill, initWeights } from '../../training/network.js';
import type { Express } from 'express';
import { createApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import type { ConfigInput } from '../../server/config.js';
import { createLogger } from '../../server/logging.js';
import { createRuntime } from '../../server/services/runtime.js';
import type { Runtime } from '../../server/services/runtime.js';

export const FMNIST_LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
export const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
export const DEMO_DIR = new URL('../../server/demo/', import.meta.url).pathname;

const CACHE = join(tmpdir(), 'sightline-test-models');

/** smallPreset's layer sequence with narrow convolutions; fc6/fc7 stay 4096 wide (the embedding). */
export function tinyPreset(): Preset {
  const base = smallPreset(10, 1, 28);
  const widths = [16, 32, 32, 32, 32];
  let i = 0;
  return Object.freeze({ ...base, layers: base.layers.map((l) => (l.kind === 'conv' ? { ...l, filters: widths[i++] ?? 32 } : l)) });
}

function writeOnce(name: string, produce: () => Uint8Array): string {
  const path = join(CACHE, name);
  if (existsSync(path)) return path;
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, produce());
  renameSync(tmp, path);
  return path;
}

/** The paper's full AlexNet (RGB, 224 crops from 256, 10 classes), random He init: for the server bench only (228 MB). */
function fullModelPath(seed: number): string {
  return writeOnce(`full-alexnet-${seed}.onnx`, () => {
    const preset = alexnetPreset(10);
    return exportOnnx(preset, initWeights(preset, 'he', seed), {
      name: 'test-alexnet',
      modelVersion: `random-${seed}`,
      labels: FMNIST_LABELS,
      preprocess: { inputSize: 224, resizeSize: 256, channels: 'rgb', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], background: [255, 255, 255] },
      source: 'random-init',
    });
  });
}

/** A random (He init, fixed seed) Fashion-MNIST-shaped classifier: 1×28×28 in, 10 logits and 4096-d fc7 out. */
export function testModelPath(seed = 7, size: 'tiny' | 'small' | 'full' = 'tiny'): string {
  if (size === 'full') return fullModelPath(seed);
  return writeOnce(`${size}-fmnist-${seed}.onnx`, () => {
    // 'small' is the default model's real architecture (alexnet-small), for the benchmark.
    const preset = size === 'tiny' ? tinyPreset() : smallPreset(10, 1, 28);
    return exportOnnx(preset, initWeights(preset, 'he', seed), {
      name: 'test-fmnist',
      modelVersion: `random-${seed}`,
      labels: FMNIST_LABELS,
      preprocess: { inputSize: 28, resizeSize: 32, channels: 'gray', scale: 1 / 255, mean: [0.286], std: [0.353], background: [255, 255, 255] },
      source: 'random-init',
    });
  });
}

/**
 * A codes model in the autoencoder's format (input `embedding`, output `code_logits`, metadata
 * `sightline.codes` naming the image model's SHA-256): a seeded Gaussian projection [4096, bits].
 */
export function testCodesPath(bits = 128, seed = 11, cropPolicy: 'center' | 'mean10' = 'center', modelPath = testModelPath()): string {
  const modelHash = createHash('sha256').update(readFileSync(modelPath)).digest('hex');
  return writeOnce(`codes-${bits}-${seed}-${cropPolicy}-${modelHash.slice(0, 12)}.onnx`, () => {
    const w = gaussianFill(new Float32Array(4096 * bits), 1 / 64, mulberry32(seed));
    const graph = {
      name: 'codes',
      node: [node('MatMul', ['embedding', 'w'], ['code_logits'], 'project')],
      initializer: [floatTensor('w', [4096, bits], w)],
      input: [valueInfo('embedding', DataType.FLOAT, ['N', 4096])],
      output: [valueInfo('code_logits', DataType.FLOAT, ['N', bits])],
    };
    const meta = {
      version: 1,
      bits,
      embeddingDim: 4096,
      modelHash,
      model: { name: 'test-fmnist', version: 'random' },
      cropPolicy,
      normalization: 'none (random projection, tests only)',
      hidden: [],
    };
    return encodeModel(modelProto(graph, { metadata: { 'sightline.codes': JSON.stringify(meta) } }));
  });
}

export function tempDir(prefix = 'sightline-server-'): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

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
