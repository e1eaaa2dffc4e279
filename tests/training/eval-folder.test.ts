/**
 * `sightline eval classify --dataset DIR`: an image folder whose class names are model labels
 * (matched by name, '/' spelled '_' in a folder name) is evaluated with the bundled model; labels
 * without images are reported; a class the model does not know is refused by name.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FASHION_MNIST_LABELS } from '../../training/data/fashion-mnist.js';
import { LabelMismatchError, matchLabels } from '../../training/evaluate.js';
import { writeFashionFolder } from './fmnist-folder.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const MODEL = join(ROOT, 'model/default/sightline-fmnist.onnx');
const tmp = mkdtempSync(join(tmpdir(), 'sightline-eval-folder-'));
const folder = join(tmp, 'folder');
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Folder name of each chosen Fashion-MNIST class (T-shirt/top cannot be a folder name as is). */
const CLASSES: Record<number, string> = { 0: 'T-shirt_top', 1: 'Trouser', 8: 'Bag' };
const PER_CLASS = 6;

before(async () => {
  assert.deepEqual(await writeFashionFolder(folder, 'test', CLASSES, PER_CLASS), [PER_CLASS, PER_CLASS, PER_CLASS]);
});

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('eval classify on an image folder', () => {
  it('matches folders to labels by name and reports the labels without images', () => {
    const res = cli('eval', 'classify', '--model', MODEL, '--dataset', folder, '--crops', '1', '--json');
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { n: number; top1: number; confusion: number[][]; missing: string[] };
    assert.equal(out.n, 3 * PER_CLASS);
    assert.deepEqual(out.missing, FASHION_MNIST_LABELS.filter((_l, i) => CLASSES[i] === undefined));
    // Rows of the confusion matrix are the model's label order: the images land in their classes' rows.
    assert.deepEqual(out.confusion.map((row) => row.reduce((a, b) => a + b, 0)), FASHION_MNIST_LABELS.map((_l, i) => (CLASSES[i] ? PER_CLASS : 0)));
    assert.ok(out.top1 >= 0.8, `the bundled model on trousers, bags and T-shirts: top-1 ${out.top1}`);
  });

  it('refuses a folder class the model has no label for, naming it', () => {
    mkdirSync(join(folder, 'Unicorn'), { recursive: true });
    try {
      const res = cli('eval', 'classify', '--model', MODEL, '--dataset', folder, '--crops', '1');
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /no label for the dataset's class 'Unicorn'; its labels are 'T-shirt\/top', 'Trouser'/);
    } finally {
      rmSync(join(folder, 'Unicorn'), { recursive: true });
    }
  });

  it('matchLabels renumbers classes to the model order', () => {
    const ds = { n: 3, size: 1, channels: 1 as const, pixels: new Uint8Array(3), labels: Int32Array.of(0, 1, 1), classNames: ['b', 'a'] };
    const { dataset, missing } = matchLabels(ds, ['a', 'b', 'c']);
    assert.deepEqual([...dataset.labels], [1, 0, 0]);
    assert.deepEqual(missing, ['c']);
    assert.throws(() => matchLabels(ds, ['a']), LabelMismatchError);
  });
});
