/**
 * Checkpoints of a dense-head fine-tune (`train --from M --train-layers fc8|fc`): after each epoch,
 * the head's weights, momentum, the weights of the best epoch so far and the schedule's state,
 * with the run's arguments, so that `--resume DIR` continues exactly (the cached features are
 * recomputed: they are a deterministic function of the source model and the images).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { NamedWeights } from '../model/index.js';
import { CHECKPOINT_FORMAT, readCheckpointJson, readFloats, writeCheckpointDir } from './checkpoint.js';
import type { RunArgs } from './options.js';
import type { EpochRecord } from './types.js';

/** Where a head's training stands after a whole epoch. */
export interface HeadState {
  /** Epochs done. */
  epoch: number;
  lr: number;
  bestAcc: number;
  bestEpoch: number;
  bad: number;
  history: EpochRecord[];
  /** The run's resolved batch and warm-up (`auto` depends on --epochs, which a resume may change). */
  batch: number;
  warmupSteps: number;
}

/** What a resumed head fine-tune starts from. */
export interface HeadResume {
  state: HeadState;
  current: NamedWeights;
  velocity: NamedWeights;
  best: NamedWeights;
}

interface HeadCheckpointJson {
  format: number;
  kind: 'head';
  /** The trained layers, in order, and the labels the last one predicts. */
  layers: string[];
  classes: string[];
  state: HeadState;
  args: RunArgs;
}

/** The layers' weights and biases, one after the other in `order`. */
function flatten(w: NamedWeights, order: readonly string[]): Float32Array {
  const parts = order.map((n) => {
    const l = w.get(n);
    if (!l) throw new Error(`no weights for '${n}'`);
    return [l.w, l.b];
  }).flat();
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** `flat` cut into layers shaped like `like`. */
function unflatten(flat: Float32Array, like: NamedWeights, order: readonly string[]): NamedWeights {
  const out: NamedWeights = new Map();
  let o = 0;
  for (const n of order) {
    const l = like.get(n);
    if (!l) throw new Error(`no weights for '${n}'`);
    const w = flat.slice(o, (o += l.w.length));
    const b = flat.slice(o, (o += l.b.length));
    out.set(n, { w, wShape: [...l.wShape], b });
  }
  return out;
}

export async function saveHeadCheckpoint(dir: string, args: RunArgs, classes: string[], order: string[], r: HeadResume): Promise<void> {
  const json: HeadCheckpointJson = { format: CHECKPOINT_FORMAT, kind: 'head', layers: order, classes, state: r.state, args };
  const arrays: Record<string, Float32Array> = { params: flatten(r.current, order), velocity: flatten(r.velocity, order) };
  // The best epoch is most often the last one: its weights are then the current ones.
  if (r.state.bestEpoch !== r.state.epoch) arrays['best'] = flatten(r.best, order);
  await writeCheckpointDir(dir, json, arrays);
}

/**
 * Reads a head checkpoint for a run whose initial layers are `like` (their shapes) predicting
 * `classes`; a checkpoint of other layers or labels is refused, naming what it holds.
 */
export async function loadHeadCheckpoint(dir: string, like: NamedWeights, order: string[], classes: string[]): Promise<HeadResume> {
  const json = (await readCheckpointJson(dir)) as Partial<HeadCheckpointJson>;
  if (json.kind !== 'head' || !json.state || !json.layers || !json.classes) {
    throw new Error(`checkpoint '${dir}' is not a fine-tune of the dense layers (--train-layers fc8 or fc): resume it without --from`);
  }
  if (json.layers.join(',') !== order.join(',')) throw new Error(`checkpoint '${dir}' trained ${json.layers.join(', ')}, this run trains ${order.join(', ')}`);
  if (json.classes.join('\n') !== classes.join('\n')) {
    throw new Error(`checkpoint '${dir}' was trained on the classes ${json.classes.join(', ')}; the dataset has ${classes.join(', ')}`);
  }
  const total = flatten(like, order).length;
  const read = async (name: string): Promise<NamedWeights> => {
    const flat = new Float32Array(total);
    await readFloats(join(dir, `${name}.bin`), flat);
    return unflatten(flat, like, order);
  };
  const current = await read('params');
  const best = existsSync(join(dir, 'best.bin')) ? await read('best') : current;
  return { state: json.state, current, velocity: await read('velocity'), best };
}
