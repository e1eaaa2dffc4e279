import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { register as registerDuplicates } from '../../cli/commands/duplicates.js';
import { register as registerReindex } from '../../cli/commands/reindex.js';
import { fallbackCodes, fallbackCodesName } from '../../model/index.js';
import { register as registerStats } from '../../cli/commands/stats.js';
import { HNSW_FILE, type NewImage } from '../../index/index.js';
import { runCli } from '../../testing/cli.js';
import { writeCodesModel, projectLogits } from './fixtures/codes-model.js';
import { dataset } from './fixtures/synthetic.js';
import { openTest, tempDir } from './fixtures/catalog.js';

/** Runs one sub-command in-process and returns what it printed on stdout. */
const run = (args: string[]): Promise<string> => runCli([registerStats, registerDuplicates, registerReindex], args);

describe('index CLI commands', () => {
  it('stats --json, duplicates --json and reindex work on an index directory', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const items = dataset({ n: 60, seed: 101 });
      const copy: NewImage = { ...items[0]!.image, source: 'copy.jpg', bytes: Buffer.from('copy'), embedding: items[0]!.embedding.map((v) => v * 1.001) };
      const cat = await openTest(dir);
      cat.addMany([...items.map((x) => x.image), copy]);
      cat.close();

      const stats = JSON.parse(await run(['stats', '--db', dir, '--json'])) as Record<string, unknown>;
      assert.deepEqual(stats, { images: 61, index_size: 61, model: 'model-aaaa', bits: 128 });
      assert.match(await run(['stats', '--db', dir]), /images +61\n.*index size 61 \(current\)/s);

      const dup = JSON.parse(await run(['duplicates', '--db', dir, '--json'])) as { groups: { ids: number[]; members: { source: string }[] }[] };
      assert.deepEqual(dup.groups.map((g) => g.ids), [[1, 61]]);
      assert.equal(dup.groups[0]!.members[1]!.source, 'copy.jpg');
      assert.match(await run(['duplicates', '--db', dir]), /^1 group of near-duplicates \(2 images; distance ≤ 0\.\d+ × mean norm\)/);
      await assert.rejects(run(['duplicates', '--db', dir, '--neighbours', 'x']), { message: "'--neighbours' must be an integer ≥ 0, got 'x'" });

      rmSync(join(dir, HNSW_FILE));
      assert.match(await run(['reindex', '--db', dir, '--m', '8']), /^rebuilt the graph of 61 images \(\d+ distinct 128-bit codes\)/);
      const after = await openTest(dir);
      assert.equal(after.openReport.rebuilt, false, 'reindex saved a valid graph');
      assert.equal(after.hnsw.params.M, 8);
      after.close();
      await assert.rejects(run(['stats', '--db', join(dir, 'nope')]), /no index database in/);
    } finally {
      cleanup();
    }
  });

  it('reindex --codes recomputes every code from the stored embeddings with a new codes model', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const modelHash = 'ab'.repeat(32);
      const items = dataset({ n: 40, seed: 102 });
      const cat = await openTest(dir, { modelHash });
      cat.addMany(items.map((x) => x.image));
      cat.close();
      const codesPath = join(dir, 'codes-64.onnx');
      const w = writeCodesModel(codesPath, { bits: 64, modelHash });
      const out = await run(['reindex', '--db', dir, '--codes', codesPath]);
      assert.match(out, /^recomputed 40 codes \(64 bits\)/);
      assert.match(out, /rebuilt the graph of 40 images \(\d+ distinct 64-bit codes\)/);
      const codesHash = createHash('sha256').update(readFileSync(codesPath)).digest('hex');
      const after = await openTest(dir, { bits: 64, modelHash, codesHash });
      try {
        assert.equal(after.openReport.rebuilt, false, 'reindex left a current graph');
        for (let id = 1; id <= 40; id++) {
          const code = after.get(id)!.code;
          assert.equal(code.length, 8);
          const logits = projectLogits(w, after.embedding(id)!, 64);
          logits.forEach((l, b) => {
            if (Math.abs(l) > 1e-3) assert.equal((code[b >> 3]! >> (b & 7)) & 1, l > 0 ? 1 : 0, `image ${id} bit ${b}`);
          });
        }
      } finally {
        after.close();
      }
      const other = join(dir, 'codes-other.onnx');
      writeCodesModel(other, { bits: 64, modelHash: 'cd'.repeat(32) });
      await assert.rejects(run(['reindex', '--db', dir, '--codes', other]), /was trained for the image model/);

      // And to the data-independent code (what the server uses for a model without a codes model).
      const back = await run(['reindex', '--db', dir, '--codes', 'random-projection']);
      assert.match(back, /^recomputed 40 codes \(128 bits\)/);
      const fb = await openTest(dir, { bits: 128, modelHash, codesHash: fallbackCodesName() });
      try {
        const want = await fallbackCodes(modelHash, 4096).encode(fb.embedding(7)!);
        assert.deepEqual(fb.get(7)!.code, want);
        assert.equal(fb.search({ code: want, embedding: fb.embedding(7)! }, { k: 1 }).hits[0]?.id, 7);
      } finally {
        fb.close();
      }
    } finally {
      cleanup();
    }
  });
});
