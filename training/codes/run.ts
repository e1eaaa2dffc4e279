/**
 * `train-codes` end to end: hash the image model, embed a dataset with the crop policy through the
 * served onnxruntime session, train the autoencoder on those embeddings, export the encoder as ONNX
 * with its metadata (bits, model SHA-256, crop policy, training metrics).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { policyCrops, type CodesMeta, type CropPolicy, sha256File, createSession, type ModelSession } from '../../model/index.js';
import type { AutoencoderOptions } from '../autoencoder.js';
import type { SquareDataset } from '../data/dataset.js';
import { loadFashionMnist } from '../data/fashion-mnist.js';
import { loadImageFolder } from '../data/image-folder.js';
import { catalogEmbeddings } from '../../index/index.js';
import { embedDataset } from './embed.js';
import { exportCodesOnnx, normalizationDescription } from './export.js';
import { trainAutoencoder, type AeProgress, type TrainedCodes } from './train.js';

/** 'fashion-mnist' (split `split`) or an ImageFolder root (all of it), at the model's resizeSize. */
export async function loadCodesDataset(
  session: ModelSession,
  dataset: string,
  opts: { split: 'train' | 'test'; dataDir?: string; limit?: number; onProgress?: (done: number, total: number) => void },
): Promise<SquareDataset> {
  const pre = session.contract.preprocess;
  if (dataset === 'fashion-mnist') {
    if (pre.channels !== 'gray') throw new Error(`Fashion-MNIST is grayscale, model '${session.modelPath}' takes '${pre.channels}' input`);
    return loadFashionMnist(opts.split, { dir: opts.dataDir, size: pre.resizeSize, limit: opts.limit });
  }
  const { dataset: ds } = await loadImageFolder(dataset, pre, { limit: opts.limit, onProgress: opts.onProgress, unlabelled: true });
  return ds;
}

export interface TrainCodesOptions extends Omit<AutoencoderOptions, 'bits'> {
  model: string;
  dataset: string;
  dataDir?: string;
  bits: number;
  out: string;
  limit?: number;
  cropPolicy: CropPolicy;
  /** onnxruntime threads for the embedding pass. */
  threads: number;
}

export interface TrainCodesEvents {
  onPhase?: (phase: string) => void;
  onEmbed?: (done: number, total: number) => void;
  onStep?: (p: AeProgress) => void;
}

export interface TrainCodesResult {
  out: string;
  meta: CodesMeta;
  trained: TrainedCodes;
  images: number;
  /** Wall-clock seconds per phase. */
  seconds: { load: number; embed: number; train: number; total: number };
}

export async function trainCodes(o: TrainCodesOptions, ev: TrainCodesEvents = {}): Promise<TrainCodesResult> {
  const t0 = performance.now();
  ev.onPhase?.('hashing the image model');
  const modelHash = await sha256File(o.model);
  const session = await createSession(o.model, { device: 'cpu', threads: o.threads });
  try {
    const { contract } = session;
    ev.onPhase?.(`loading ${o.dataset}`);
    const ds = await loadCodesDataset(session, o.dataset, { split: 'train', dataDir: o.dataDir, limit: o.limit });
    if (ds.n < 2) throw new Error(`dataset '${o.dataset}' has ${ds.n} usable images; the autoencoder needs at least 2`);
    const t1 = performance.now();
    ev.onPhase?.(`embedding ${ds.n} images (${o.cropPolicy})`);
    const emb = await embedDataset(session, ds, policyCrops(o.cropPolicy), ev.onEmbed);
    const t2 = performance.now();
    ev.onPhase?.('training the autoencoder');
    const trained = await trainAutoencoder({ embeddings: emb.embeddings, n: emb.n, dim: emb.dim, labels: ds.labels, numClasses: ds.classNames.length }, o, ev.onStep);
    const t3 = performance.now();
    const last = trained.history.at(-1);
    const supervised = (o.clsWeight > 0 || o.centerWeight > 0) && ds.classNames.length > 1;
    const meta: CodesMeta = {
      version: 1,
      bits: o.bits,
      embeddingDim: emb.dim,
      modelHash,
      model: { name: contract.name, version: contract.modelVersion },
      cropPolicy: o.cropPolicy,
      normalization: normalizationDescription(),
      hidden: [...o.hidden],
      classes: supervised ? [...ds.classNames] : [],
      metrics: {
        reconstruction_mse: last?.rec ?? NaN,
        ...(supervised ? { code_class_accuracy: last?.accuracy ?? 0, class_loss: last?.cls ?? 0 } : {}),
        bit_imbalance: trained.stats.imbalance,
        unsure_fraction: trained.stats.unsure,
        dead_bits: trained.stats.deadBits,
        images: ds.n,
        embed_seconds: Math.round(t2 - t1) / 1000,
        train_seconds: Math.round(trained.seconds * 1000) / 1000,
      },
      training: {
        dataset: o.dataset === 'fashion-mnist' ? 'fashion-mnist train' : o.dataset,
        epochs: o.epochs, batch: o.batch, lr: o.lr, seed: o.seed,
        noise_std: o.noiseStd, class_weight: supervised ? o.clsWeight : 0, center_weight: supervised ? o.centerWeight : 0, balance_weight: o.balanceWeight,
      },
    };
    ev.onPhase?.(`writing ${o.out}`);
    await mkdir(dirname(o.out), { recursive: true });
    await writeFile(o.out, exportCodesOnnx(trained.encoder, meta));
    const t4 = performance.now();
    return {
      out: o.out, meta, trained, images: ds.n,
      seconds: { load: (t1 - t0) / 1000, embed: (t2 - t1) / 1000, train: (t3 - t2) / 1000, total: (t4 - t0) / 1000 },
    };
  } finally {
    await session.close();
  }
}

export interface TrainCodesFromDbOptions extends Omit<TrainCodesOptions, 'model' | 'dataset' | 'dataDir' | 'threads'> {
  /** Catalog directory whose stored embeddings are the training set. */
  db: string;
}

/**
 * `train-codes --db DIR`: the autoencoder learns from the embeddings a catalog already stores, so
 * no image is read again and no labels are needed (unsupervised, as in semantic hashing): the codes
 * model belongs to the catalog's image model, and `reindex --codes OUT` switches the catalog to it.
 */
export async function trainCodesFromDb(o: TrainCodesFromDbOptions, ev: TrainCodesEvents = {}): Promise<TrainCodesResult> {
  const t0 = performance.now();
  ev.onPhase?.(`reading the embeddings stored in ${o.db}`);
  const e = catalogEmbeddings(o.db, o.limit);
  if (e.n < 2) throw new Error(`catalog '${o.db}' holds ${e.n} images; the autoencoder needs at least 2 (index some with \`sightline index\`)`);
  const t1 = performance.now();
  ev.onPhase?.(`training the autoencoder on ${e.n} embeddings (unsupervised)`);
  const trained = await trainAutoencoder({ embeddings: e.embeddings, n: e.n, dim: e.dim }, { ...o, clsWeight: 0, centerWeight: 0 }, ev.onStep);
  const t2 = performance.now();
  const last = trained.history.at(-1);
  const meta: CodesMeta = {
    version: 1, bits: o.bits, embeddingDim: e.dim, modelHash: e.modelHash,
    model: { name: 'catalog', version: e.modelHash.slice(0, 12) }, cropPolicy: o.cropPolicy,
    normalization: normalizationDescription(), hidden: [...o.hidden], classes: [],
    metrics: {
      reconstruction_mse: last?.rec ?? NaN, bit_imbalance: trained.stats.imbalance, unsure_fraction: trained.stats.unsure,
      dead_bits: trained.stats.deadBits, images: e.n, train_seconds: Math.round(trained.seconds * 1000) / 1000,
    },
    training: { dataset: `catalog ${o.db}`, epochs: o.epochs, batch: o.batch, lr: o.lr, seed: o.seed, noise_std: o.noiseStd, class_weight: 0, center_weight: 0, balance_weight: o.balanceWeight },
  };
  ev.onPhase?.(`writing ${o.out}`);
  await mkdir(dirname(o.out), { recursive: true });
  await writeFile(o.out, exportCodesOnnx(trained.encoder, meta));
  const t3 = performance.now();
  return { out: o.out, meta, trained, images: e.n, seconds: { load: (t1 - t0) / 1000, embed: 0, train: (t2 - t1) / 1000, total: (t3 - t0) / 1000 } };
}
