/** `train-codes --db`: an unsupervised codes model from the embeddings a catalog stores, then `reindex --codes` to it. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openCatalog } from '../../index/index.js';
import { fallbackCodesName, readCodesMeta } from '../../model/index.js';
import { dataset } from '../index/fixtures/synthetic.js';
import { tempDir } from '../index/fixtures/catalog.js';

const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { encoding: 'utf8' });

describe('train-codes --db (no labels, no images read)', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);
  const modelHash = 'ef'.repeat(32);

  it('fits a codes model to the stored embeddings; reindex --codes switches the catalog to it', async () => {
    const db = join(dir, 'db');
    const cat = await openCatalog(db, { bits: 128, embeddingDim: 64, modelHash, codesHash: fallbackCodesName(), saveDelayMs: null });
    const items = dataset({ n: 120, dim: 64, clusters: 6, seed: 141 });
    cat.addMany(items.map((x) => x.image));
    cat.close();
    const out = join(dir, 'codes-db.onnx');
    const res = cli('train-codes', '--db', db, '--out', out, '--bits', '64', '--epochs', '2', '--hidden', '', '--batch', '32');
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /wrote .*codes-db\.onnx: 64-bit codes/);
    const meta = readCodesMeta(out);
    assert.equal(meta.modelHash, modelHash, 'the codes model belongs to the catalog\'s image model');
    assert.equal(meta.embeddingDim, 64);
    assert.deepEqual(meta.classes, [], 'unsupervised');
    assert.equal(meta.metrics['images'], 120);

    const re = cli('reindex', '--db', db, '--codes', out);
    assert.equal(re.status, 0, re.stderr);
    assert.match(re.stdout, /recomputed 120 codes \(64 bits\)/);
    const codesHash = createHash('sha256').update(readFileSync(out)).digest('hex');
    const after = await openCatalog(db, { modelHash, codesHash, readOnly: true });
    try {
      assert.equal(after.meta.bits, 64);
      for (const id of [3, 77, 118]) {
        const e = after.embedding(id)!;
        assert.equal(after.search({ code: after.get(id)!.code, embedding: e }, { k: 1 }).hits[0]?.id, id);
      }
    } finally {
      after.close();
    }
  });

  it('refuses --model with --db, and an empty catalog', async () => {
    const bad = cli('train-codes', '--db', join(dir, 'db'), '--model', 'x.onnx', '--out', join(dir, 'x.onnx'));
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--db trains on the catalog's own embeddings/);
    const empty = join(dir, 'empty');
    (await openCatalog(empty, { bits: 128, embeddingDim: 64, modelHash, codesHash: fallbackCodesName() })).close();
    const none = cli('train-codes', '--db', empty, '--out', join(dir, 'y.onnx'));
    assert.notEqual(none.status, 0);
    assert.match(none.stderr, /holds 0 images/);
  });
});
