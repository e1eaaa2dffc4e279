import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { parseTrainCodesFlags, register as registerTrainCodes } from '../../cli/commands/train-codes.js';
import { createCodesSession } from '../../model/codes.js';
import { sha256File } from '../../model/index.js';
import { createSession } from '../../model/session.js';
import { DEFAULT_AE, normalizationStats, type AutoencoderOptions, type EmbeddingSet } from '../../training/autoencoder.js';
import { useBackend } from '../../training/backend.js';
import { hashCenters } from '../../training/codes/centers.js';
import { embedDataset } from '../../training/codes/embed.js';
import { trainCodes } from '../../training/codes/run.js';
import { trainAutoencoder, type TrainedCodes } from '../../training/codes/train.js';
import { loadFashionMnist } from '../../training/data/fashion-mnist.js';
import { gaussianFill, mulberry32 } from '../../training/network.js';
import { buildTinyModel, type TinyModel } from '../model/tiny-model.js';

const DIM = 64;
const BITS = 32;
const FIXTURES = 'tests/fixtures/fashion-mnist';

/** Four clusters of non-negative (ReLU-like) 64-d vectors, 64 each, rows interleaved. */
function clusteredSet(seed: number): EmbeddingSet & { labels: Int32Array } {
  const k = 4;
  const n = 256;
  const rand = mulberry32(seed);
  const centers = gaussianFill(new Float32Array(k * DIM), 1.5, rand);
  const noise = gaussianFill(new Float32Array(n * DIM), 0.6, rand);
  const embeddings = new Float32Array(n * DIM);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % k;
    for (let j = 0; j < DIM; j++) embeddings[i * DIM + j] = Math.max(0, (centers[(i % k) * DIM + j] as number) + (noise[i * DIM + j] as number));
  }
  return { embeddings, n, dim: DIM, labels, numClasses: k };
}

const small: AutoencoderOptions = { ...DEFAULT_AE, bits: BITS, hidden: [32], epochs: 30, batch: 32, lr: 3e-3, clsWeight: 0, centerWeight: 0 };

/** Sign codes of the trained encoder, computed from its exported weights in plain JS. */
function signCodes(t: TrainedCodes, set: EmbeddingSet): Uint8Array[] {
  const { mean, scale } = t.encoder.norm;
  return Array.from({ length: set.n }, (_, i) => {
    const row = set.embeddings.subarray(i * set.dim, (i + 1) * set.dim);
    const norm = Math.max(Math.hypot(...row), 1e-6);
    let h = Float64Array.from(row, (v, j) => (v / norm - (mean[j] as number)) * scale);
    t.encoder.layers.forEach((l, li) => {
      const [fin, fout] = l.wShape as [number, number];
      const out = new Float64Array(fout);
      for (let o = 0; o < fout; o++) {
        let s = l.b[o] as number;
        for (let q = 0; q < fin; q++) s += (h[q] as number) * (l.w[q * fout + o] as number);
        out[o] = li < t.encoder.layers.length - 1 ? Math.max(0, s) : s;
      }
      h = out;
    });
    return Uint8Array.from(h, (v) => (v > 0 ? 1 : 0));
  });
}

const hamming = (a: Uint8Array, b: Uint8Array): number => a.reduce((d, v, i) => d + (v === b[i] ? 0 : 1), 0);

/** Mean Hamming distance between codes of rows with labels in `a` and rows with labels in `b`. */
function meanDistance(codes: Uint8Array[], labels: Int32Array, a: number, b: number): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < codes.length; i++) {
    for (let j = i + 1; j < codes.length; j++) {
      const li = labels[i];
      const lj = labels[j];
      if ((li === a && lj === b) || (li === b && lj === a)) {
        sum += hamming(codes[i] as Uint8Array, codes[j] as Uint8Array);
        count++;
      }
    }
  }
  return sum / count;
}

before(async () => {
  await useBackend('wasm');
});

describe('autoencoder on a synthetic clustered set', () => {
  const set = clusteredSet(5);

  it('normalization stats: mean of the unit rows and 1 / RMS of the centered values', () => {
    const s = normalizationStats({ embeddings: Float32Array.of(3, 4, 0, 2), n: 2, dim: 2 });
    // Unit rows (0.6, 0.8) and (0, 1): mean (0.3, 0.9); centered ±(0.3, −0.1): RMS √0.05.
    assert.ok(Math.abs((s.mean[0] as number) - 0.3) < 1e-6 && Math.abs((s.mean[1] as number) - 0.9) < 1e-6);
    assert.ok(Math.abs(s.scale - 1 / Math.sqrt(0.05)) < 1e-4);
  });

  it('unsupervised codes separate the clusters: Hamming within ≪ between, nearest code in the same cluster', async () => {
    const trained = await trainAutoencoder(set, small);
    const codes = signCodes(trained, set);
    const within = [0, 1, 2, 3].map((c) => meanDistance(codes, set.labels, c, c));
    const between = [[0, 1], [0, 2], [1, 3], [2, 3]].map(([a, b]) => meanDistance(codes, set.labels, a as number, b as number));
    assert.ok(Math.max(...within) < 0.25 * Math.min(...between), `within ${within.join(', ')} vs between ${between.join(', ')}`);
    let sameCluster = 0;
    codes.forEach((c, i) => {
      let best = -1;
      codes.forEach((o, j) => {
        if (j !== i && (best < 0 || hamming(c, o) < hamming(c, codes[best] as Uint8Array))) best = j;
      });
      if (set.labels[best] === set.labels[i]) sameCluster++;
    });
    assert.ok(sameCluster / set.n > 0.95, `nearest code in the same cluster for ${sameCluster}/${set.n}`);
    assert.equal(trained.history.length, small.epochs);
    assert.ok((trained.history.at(-1)?.rec ?? 1) < (trained.history[0]?.rec ?? 0), 'reconstruction error decreases');
  });

  it('noise on the code logits pushes them away from 0 (binary codes)', async () => {
    const noisy = await trainAutoencoder(set, { ...small, epochs: 15, noiseStd: 3 });
    const clean = await trainAutoencoder(set, { ...small, epochs: 15, noiseStd: 0 });
    assert.ok(noisy.stats.unsure < clean.stats.unsure, `|z| < 1 for ${noisy.stats.unsure} with noise, ${clean.stats.unsure} without`);
  });

  it('the classification loss and the hash-center loss put class structure into the codes', async () => {
    // Classes merge clusters {0, 1} and {2, 3}: supervised codes pull 0 and 1 together.
    const merged = Int32Array.from(set.labels, (c) => (c < 2 ? 0 : 1));
    const supervisedSet = { ...set, labels: merged, numClasses: 2 };
    const ratio = (codes: Uint8Array[]): number => meanDistance(codes, set.labels, 0, 1) / meanDistance(codes, set.labels, 0, 2);
    const unsup = ratio(signCodes(await trainAutoencoder(supervisedSet, small), set));
    const softmax = ratio(signCodes(await trainAutoencoder(supervisedSet, { ...small, clsWeight: 5 }), set));
    const centers = ratio(signCodes(await trainAutoencoder(supervisedSet, { ...small, centerWeight: 5 }), set));
    assert.ok(softmax < unsup, `same-class / other-class cluster distance: softmax head ${softmax}, unsupervised ${unsup}`);
    assert.ok(centers < softmax, `hash centers ${centers} should separate classes more than the softmax head ${softmax}`);
  });
});

describe('hash centers', () => {
  const distance = (c: Float32Array, bits: number, a: number, b: number): number => {
    let d = 0;
    for (let j = 0; j < bits; j++) if (c[a * bits + j] !== c[b * bits + j]) d++;
    return d;
  };

  it('Hadamard rows: balanced and pairwise exactly B/2 apart; random balanced rows otherwise', () => {
    for (const [classes, bits] of [[10, 128], [10, 64], [31, 32], [10, 96], [70, 64]] as const) {
      const c = hashCenters(classes, bits, 1);
      for (let a = 0; a < classes; a++) {
        assert.equal(c.subarray(a * bits, (a + 1) * bits).reduce((s, v) => s + v, 0), bits / 2, `row ${a} of ${classes}×${bits} is balanced`);
        for (let b = a + 1; b < classes; b++) {
          const d = distance(c, bits, a, b);
          if ((bits & (bits - 1)) === 0 && classes < bits) assert.equal(d, bits / 2);
          else assert.ok(d > bits / 4, `random centers ${a}, ${b} only ${d} apart`);
        }
      }
    }
  });
});

describe('train-codes end to end', () => {
  let tiny: TinyModel;
  let dir: string;

  before(() => {
    tiny = buildTinyModel({ gray: true });
    dir = mkdtempSync(join(tmpdir(), 'sightline-codes-'));
  });
  after(() => {
    tiny.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('embeds the fixture images, trains, and writes a codes model bound to the image model', async () => {
    const out = join(dir, 'codes.onnx');
    // The flags the CLI parses, run through the same function the command calls.
    const opts = parseTrainCodesFlags({
      model: tiny.path, dataset: 'fashion-mnist', data: FIXTURES, bits: '64', out, epochs: '2', limit: '300', seed: '3', cropPolicy: 'center',
      hidden: '16', batch: '50', lr: '0.001', noise: '2', classWeight: '1', centerWeight: '1', balanceWeight: '0.1', threads: '1',
    });
    const phases: string[] = [];
    let steps = 0;
    const res = await trainCodes(opts, { onPhase: (p) => phases.push(p), onStep: () => steps++ });
    assert.equal(res.out, out);
    assert.equal(res.images, 300);
    assert.equal(steps, 2 * 6);
    assert.ok(phases.some((p) => p.startsWith('embedding 300 images')));
    const codes = await createCodesSession(out);
    const model = await createSession(tiny.path, { threads: 1 });
    try {
      assert.equal(codes.bits, 64);
      assert.equal(codes.embeddingDim, 64);
      assert.equal(codes.modelHash, await sha256File(tiny.path));
      assert.equal(codes.cropPolicy, 'center');
      assert.equal(codes.meta.classes.length, 10);
      assert.equal(codes.meta.metrics['images'], 300);
      assert.equal(codes.meta.training['epochs'], 2);
      const ds = await loadFashionMnist('test', { dir: FIXTURES, size: model.contract.preprocess.resizeSize, limit: 20 });
      const e = await embedDataset(model, ds, 1);
      const packed = await codes.encode(e.embeddings, e.n);
      assert.equal(packed.length, 20 * 8);
      assert.ok(new Set(Array.from({ length: 20 }, (_, i) => Buffer.from(packed.subarray(i * 8, i * 8 + 8)).toString('hex'))).size > 1, 'images get different codes');
    } finally {
      await codes.close();
      await model.close();
    }
  });

  it('refuses bit counts other than 64, 128 and 256', async () => {
    const program = new Command().exitOverride();
    registerTrainCodes(program);
    await assert.rejects(program.parseAsync(['train-codes', '--model', tiny.path, '--bits', '100', '--out', join(dir, 'x.onnx')], { from: 'user' }), /--bits must be one of 64, 128, 256, got '100'/);
  });
});
