/**
 * Checkpoints: everything needed to continue a run exactly where it stopped — weights, momentum,
 * epoch/step position and the learning-rate schedule's state — written atomically (temp folder +
 * rename) so a crash mid-write never leaves a half checkpoint behind.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RunArgs } from './options.js';
import type { TrainConfig, TrainState } from './types.js';

export const CHECKPOINT_FORMAT = 1;

export interface CheckpointData {
  format: number;
  config: TrainConfig;
  state: TrainState;
  /** The run's arguments (dataset, preset, schedule, …) so that `--resume DIR` alone continues it; absent in older checkpoints. */
  args?: RunArgs;
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export async function saveCheckpoint(dir: string, data: CheckpointData, params: Float32Array, velocity: Float32Array): Promise<void> {
  await writeCheckpointDir(dir, data, { params, velocity });
}

/** Writes state.json and one NAME.bin per array into `dir`, atomically (any kind of checkpoint). */
export async function writeCheckpointDir(dir: string, json: object, arrays: Record<string, Float32Array>): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  for (const [name, a] of Object.entries(arrays)) await writeFile(join(tmp, `${name}.bin`), bytesOf(a));
  await writeFile(join(tmp, 'state.json'), `${JSON.stringify(json, null, 2)}\n`);
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) await rename(dir, old);
  await rename(tmp, dir);
  await rm(old, { recursive: true, force: true });
}

export async function readFloats(path: string, into: Float32Array): Promise<void> {
  const buf = await readFile(path);
  if (buf.byteLength !== into.byteLength) {
    throw new Error(`checkpoint file '${path}' holds ${buf.byteLength / 4} values, the model needs ${into.length}`);
  }
  bytesOf(into).set(buf);
}

/** state.json of a checkpoint of any kind (a full run's, or a head fine-tune's with `kind: 'head'`). */
export async function readCheckpointJson(dir: string): Promise<{ format: number; kind?: string; args?: RunArgs }> {
  const path = join(dir, 'state.json');
  if (!existsSync(path)) throw new Error(`'${dir}' is not a checkpoint: ${path} is missing`);
  const data = JSON.parse(await readFile(path, 'utf8')) as { format: number; kind?: string; args?: RunArgs };
  if (data.format !== CHECKPOINT_FORMAT) throw new Error(`checkpoint '${dir}' has format ${data.format}, expected ${CHECKPOINT_FORMAT}`);
  return data;
}

export async function readCheckpointData(dir: string): Promise<CheckpointData> {
  const data = (await readCheckpointJson(dir)) as CheckpointData & { kind?: string };
  if (data.kind === 'head') throw new Error(`checkpoint '${dir}' is a fine-tune of the dense layers (--train-layers fc8 or fc), not a run of the full trainer`);
  // JSON has no Infinity: a run saved before its first validation wrote bestValError as null,
  // which would count the next validation as "no improvement" and change the schedule.
  if ((data.state.bestValError as number | null) === null) data.state.bestValError = Infinity;
  return data;
}

export async function loadCheckpointArrays(dir: string, params: Float32Array, velocity: Float32Array): Promise<void> {
  await readFloats(join(dir, 'params.bin'), params);
  await readFloats(join(dir, 'velocity.bin'), velocity);
}
