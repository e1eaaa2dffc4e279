/**
 * The duplicates listing's passes (server/services/duplicates.ts): one at a time whatever the
 * requests, shared by requests for the same state and options, redone after a change, on a real
 * catalog whose duplicatesAsync is counted.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { SqliteBackend } from '../../index/index.js';
import { DuplicateGroups } from '../../server/services/duplicates.js';
import { openTest, tempDir } from '../index/fixtures/catalog.js';
import { dataset } from '../index/fixtures/synthetic.js';

const { dir, cleanup } = tempDir();
after(cleanup);

test('one pass at a time, shared by equal requests, redone after a change', async () => {
  const cat = await openTest(dir, { embeddingDim: 64 });
  try {
    const items = dataset({ n: 60, seed: 11, dim: 64, noise: 0.02 });
    cat.addMany(items.map((x) => x.image));
    let running = 0;
    let most = 0;
    let passes = 0;
    const real = cat.duplicatesAsync.bind(cat);
    cat.duplicatesAsync = async (o) => {
      passes++;
      most = Math.max(most, ++running);
      try {
        return await real(o);
      } finally {
        running--;
      }
    };
    const groups = new DuplicateGroups(new SqliteBackend(cat), (id) => `/t/${id}`);
    const opts = { limit: 1000, neighbours: 10 };
    // Three requests at once: two alike, one with other options.
    const [a, b, c] = await Promise.all([groups.page(opts), groups.page(opts), groups.page({ ...opts, maxRelativeDistance: 2 })]);
    assert.equal(passes, 2);
    assert.equal(most, 1);
    assert.deepEqual(a, b);
    assert.deepEqual(a.groups.map((g) => g.ids), cat.duplicates().sort((x, y) => x.ids[0]! - y.ids[0]!).map((g) => g.ids));
    assert.ok(a.total > 0, 'the tight clusters make groups');
    const byFirst = (o: { maxRelativeDistance: number }) => cat.duplicates(o).sort((x, y) => x.ids[0]! - y.ids[0]!).map((g) => g.ids);
    // Every pair is within 2 × the mean norm, so each group is a whole cluster of nearest neighbours.
    assert.deepEqual(c.groups.map((g) => g.ids), byFirst({ maxRelativeDistance: 2 }));
    assert.equal(c.groups.reduce((n, g) => n + g.ids.length, 0), 60);
    // Pages of the same listing reuse the pass; a delete makes a new one.
    const first = await groups.page({ ...opts, maxRelativeDistance: 2, limit: 1 });
    assert.equal(passes, 2);
    assert.equal(typeof first.lastId, 'number');
    cat.remove(1);
    const after = await groups.page({ ...opts, maxRelativeDistance: 2 });
    assert.equal(passes, 3);
    assert.deepEqual(after.groups.map((g) => g.ids), byFirst({ maxRelativeDistance: 2 }));
    assert.equal(after.groups.reduce((n, g) => n + g.ids.length, 0), 59);
  } finally {
    cat.close();
  }
});
