/**
 * `sightline eval classify --record`: the whole Fashion-MNIST test split's top-1/top-5 written into
 * the evaluated model's contract (here the fixture's small test split and a copy of the bundled
 * model); refused, before any work, with --limit or an image folder. And the int8 contract from
 * `quantize` keeps its source's results only as fp32_* (they were measured on the fp32 graph).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readContractSync } from '../../model/index.js';
import { fp32Metrics } from '../../model/onnx/quantize.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const DATA = join(ROOT, 'tests/fixtures/fashion-mnist');
const tmp = mkdtempSync(join(tmpdir(), 'sightline-eval-record-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('eval classify --record', () => {
  it('writes top-1, top-5 and the image count into the contract under the training keys', () => {
    const model = join(tmp, 'model.onnx');
    copyFileSync(join(ROOT, 'model/default/sightline-fmnist.onnx'), model);
    const before = readContractSync(model);
    const res = cli('eval', 'classify', '--model', model, '--data', DATA, '--crops', '1', '--record', '--json');
    assert.equal(res.code, 0, res.stderr);
    const m = JSON.parse(res.stdout) as { n: number; top1: number; top5: number };
    const after = readContractSync(model);
    assert.equal(after.metrics['test_top1_1crop'], m.top1);
    assert.equal(after.metrics['test_top5_1crop'], m.top5);
    assert.equal(after.metrics['test_images'], m.n);
    assert.ok(m.n > 0 && m.n < 10_000, `fixture split of ${m.n} images`);
    assert.equal(after.metrics['test_top1_10crop'], before.metrics['test_top1_10crop'], 'other results are kept');
    assert.deepEqual({ ...after, metrics: {} }, { ...before, metrics: {} }, 'nothing else in the contract changes');
    assert.match(res.stderr, /recorded top-1 [\d.]+% and top-5 [\d.]+% on \d+ images in the contract of/);
  });

  it('refuses --record with --limit or an image folder (usage error, exit 2)', () => {
    const limited = cli('eval', 'classify', '--data', DATA, '--limit', '5', '--record');
    assert.equal(limited.code, 2, limited.stderr);
    assert.match(limited.stderr, /--record takes the whole Fashion-MNIST test split: drop --limit 5/);
    const folder = cli('eval', 'classify', '--dataset', tmp, '--record');
    assert.equal(folder.code, 2, folder.stderr);
    assert.match(folder.stderr, /drop --dataset '/);
  });
});

describe('fp32Metrics (the int8 contract of sightline quantize)', () => {
  it('renames measured results to fp32_* and keeps training facts', () => {
    assert.deepEqual(fp32Metrics({ test_top1_10crop: 0.921, val_top1_1crop: 0.9158, test_images: 10_000, epochs: 13, train_seconds: 22_085 }), {
      fp32_test_top1_10crop: 0.921,
      fp32_val_top1_1crop: 0.9158,
      fp32_test_images: 10_000,
      epochs: 13,
      train_seconds: 22_085,
    });
  });
});
