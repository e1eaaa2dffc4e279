/**
 * Run sizes that fit small folders (validation share, batch, warm-up, messages naming the flag),
 * the run arguments a checkpoint records and how `--resume DIR` uses them (a conflicting flag is
 * refused), the printed resume command, and the progress bar's first frame.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { resumeOptions, STEP_BAR, stepPayload } from '../../cli/commands/train.js';
import { CHECKPOINT_FORMAT, saveCheckpoint } from '../../training/checkpoint.js';
import { planSizes, resumeArgs, resumeCommand, type RunArgs } from '../../training/options.js';
import { initialState } from '../../training/trainer.js';
import type { TrainConfig } from '../../training/types.js';

const tmp = mkdtempSync(join(tmpdir(), 'sightline-options-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const auto = { val: { fraction: 0.1 }, batch: 'auto', warmupSteps: 'auto', epochs: 30, workers: 2 } as const;

describe('planSizes: defaults that fit the dataset', () => {
  it('a 120-image folder: 12 held out, a batch small enough for several steps, a short warm-up', () => {
    const s = planSizes(120, auto);
    assert.equal(s.valCount, 12);
    assert.equal(s.batch, 8, '108 training images / 8 steps ≈ 13, rounded down to a power of two');
    assert.equal(s.stepsPerEpoch, 13);
    assert.equal(s.warmupSteps, Math.ceil(13 * 30 * 0.05), '5 % of the run, not 300 steps');
    assert.ok(s.warmupSteps < s.stepsPerEpoch * 30);
  });

  it('a large dataset keeps the paper batch and the 300-step warm-up cap', () => {
    const s = planSizes(60_000, auto);
    assert.deepEqual([s.valCount, s.batch, s.warmupSteps], [6000, 128, 300]);
  });

  it('the validation share never takes the last batch', () => {
    const s = planSizes(10, { ...auto, val: { fraction: 0.9 }, batch: 4 });
    assert.deepEqual([s.valCount, s.batch, s.stepsPerEpoch], [6, 4, 1]);
    assert.equal(planSizes(10, { ...auto, batch: 'auto' }).batch, 2, 'auto batch never goes below the worker count');
  });

  it('sizes that do not fit are refused with the flag to change', () => {
    assert.throws(() => planSizes(120, { ...auto, val: 119, batch: 16 }), /training set has 1 images \(--val took 119 of 120\), fewer than one batch of 16; lower --batch or --val/);
    assert.throws(() => planSizes(120, { ...auto, val: 120 }), /--val 120 takes all 120 images .* lower --val/);
    assert.throws(() => planSizes(100, { ...auto, val: 0, batch: 128 }), /has 100 images, fewer than one batch of 128; lower --batch$/);
    assert.throws(() => planSizes(100, { ...auto, val: 0, batch: 9 }), /--batch 9 must be a multiple of --workers 2/);
  });
});

function args(over: Partial<RunArgs> = {}): RunArgs {
  return {
    preset: 'alexnet-small', dataset: '/data/flowers', epochs: 30, batch: 'auto', lr: 0.01, minLr: 1e-5, patience: 3, lrDrops: [],
    warmupSteps: 'auto', init: 'paper', seed: 1, val: { fraction: 0.1 }, workers: 2, backend: 'wasm', pcaStd: 0.1,
    out: '/models/flowers.onnx', fp16: false, name: 'flowers', modelVersion: '1', ...over,
  };
}

describe('resume: the checkpoint holds the run', () => {
  it('resumeArgs keeps the saved run, lets the length and output change, and refuses anything else', () => {
    assert.deepEqual(resumeArgs(args(), {}, '/ck'), args());
    assert.deepEqual(resumeArgs(args(), { epochs: 40, out: '/m/x.onnx', dataset: '/data/flowers' }, '/ck'), args({ epochs: 40, out: '/m/x.onnx' }));
    assert.throws(
      () => resumeArgs(args(), { dataset: 'fashion-mnist', seed: 2 }, '/ck'),
      /checkpoint '\/ck' was made by another run: --dataset fashion-mnist \(the checkpoint holds --dataset \/data\/flowers\); --seed 2 \(the checkpoint holds --seed 1\)/,
    );
  });

  it('--random-erasing is part of the run: a different value is refused; an older checkpoint without it held 0 (off)', () => {
    const erasing = args({ randomErasing: 0.5 });
    assert.deepEqual(resumeArgs(erasing, { randomErasing: 0.5 }, '/ck'), erasing);
    assert.throws(() => resumeArgs(erasing, { randomErasing: 0 }, '/ck'), /--random-erasing 0 \(the checkpoint holds --random-erasing 0\.5\)/);
    assert.deepEqual(resumeArgs(args(), { randomErasing: 0 }, '/ck'), args());
    assert.throws(() => resumeArgs(args(), { randomErasing: 0.3 }, '/ck'), /--random-erasing 0\.3 \(the checkpoint holds --random-erasing 0\)/);
  });

  it('`--resume DIR` alone continues; a conflicting --dataset on the command line is refused', async () => {
    const dir = join(tmp, 'ck');
    const cfg = { lr: 0.01 } as TrainConfig;
    const saved = args({ out: join(tmp, 'flowers.onnx') });
    await saveCheckpoint(dir, { format: CHECKPOINT_FORMAT, config: cfg, state: initialState(cfg), args: saved }, new Float32Array(1), new Float32Array(1));
    // Commander fills every flag with its default; only those given on the command line count.
    const defaults = {
      preset: 'alexnet-small', dataset: 'fashion-mnist', epochs: '30', batch: 'auto', lr: '0.01', minLr: '0.00001', patience: '3', lrDrops: '',
      warmup: 'auto', init: 'paper', seed: '1', val: '10%', workers: '2', backend: 'wasm', pcaStd: '0.1', randomErasing: '0', fp16: false, modelVersion: '1', trainLayers: 'fc8',
      checkpointEvery: '0',
    };
    const alone = await resumeOptions({ ...defaults, resume: dir }, () => false);
    assert.deepEqual({ ...alone, resume: undefined, checkpoint: undefined, resumeLr: undefined }, { ...saved, resume: undefined, checkpoint: undefined, resumeLr: undefined });
    assert.equal(alone.resume, dir);
    assert.equal(alone.checkpoint, dir);

    await assert.rejects(
      resumeOptions({ ...defaults, resume: dir }, (a) => a === 'dataset'),
      /--dataset fashion-mnist \(the checkpoint holds --dataset \/data\/flowers\)/,
    );
    await assert.rejects(
      resumeOptions({ ...defaults, randomErasing: '0.5', resume: dir }, (a) => a === 'randomErasing'),
      /--random-erasing 0\.5 \(the checkpoint holds --random-erasing 0\)/,
    );
    const longer = await resumeOptions({ ...defaults, epochs: '45', resume: dir }, (a) => a === 'epochs');
    assert.equal(longer.epochs, 45);
    const often = await resumeOptions({ ...defaults, checkpointEvery: '50', resume: dir }, (a) => a === 'checkpointEvery');
    assert.equal(often.checkpointEvery, 50, 'how often a resumed run checkpoints may change');
    await assert.rejects(resumeOptions({ ...defaults, resume: join(tmp, 'none') }, () => false), /--resume: '.*none' is not a checkpoint/);
  });

  it('the printed resume command is one that runs as printed', () => {
    assert.equal(resumeCommand('/tmp/ck/run1'), 'sightline train --resume /tmp/ck/run1');
    assert.equal(resumeCommand("/tmp/my run's"), "sightline train --resume '/tmp/my run'\\''s'");
  });
});

describe('progress bar', () => {
  it('the payload of a step fills every placeholder of the bar, so the first frame shows values', () => {
    const payload = stepPayload({ epoch: 1, epochs: 3, step: 1, steps: 10, loss: 2.3, accuracy: 0.1, imagesPerSecond: 40, etaSeconds: 65, lr: 0.001 });
    const builtIn = new Set(['bar', 'value', 'total']);
    const fields = [...STEP_BAR.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string).filter((f) => !builtIn.has(f));
    assert.ok(fields.length >= 7);
    for (const f of fields) assert.ok(payload[f] !== undefined, `placeholder {${f}} has a value`);
    assert.equal(payload['loss'], '2.3000');
    assert.equal(payload['eta_h'], '1m05s');
  });
});
