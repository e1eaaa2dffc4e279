/** Catalog.list: keyset pages in id order, label and out-of-distribution filters in SQL, argument checks. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Catalog, IndexParamError, type ListOptions } from '../../index/index.js';
import { openTest, tempDir } from './fixtures/catalog.js';
import { dataset } from './fixtures/synthetic.js';

function pages(cat: Catalog, o: Omit<ListOptions, 'afterId'>): number[][] {
  const out: number[][] = [];
  let afterId = 0;
  for (;;) {
    const page = cat.list({ ...o, afterId });
    out.push(page.images.map((r) => r.id));
    if (!page.more) return out;
    afterId = page.images.at(-1)!.id;
  }
}

describe('Catalog.list', () => {
  const { dir, cleanup } = tempDir();
  let cat: Catalog;
  const items = dataset({ n: 40, seed: 5, dim: 64 });
  before(async () => {
    cat = await openTest(dir, { embeddingDim: 64 });
    // Scores i / 10 on the energy basis for even i, another basis for i % 4 = 1, none for the rest.
    cat.addMany(items.map((x, i) => (i % 2 === 0 ? { ...x.image, ood: { score: i / 10, basis: 'energy' } } : i % 4 === 1 ? { ...x.image, ood: { score: 100, basis: 'msp' } } : x.image)));
  });
  after(() => {
    cat.close();
    cleanup();
  });

  it('pages in id order with no gap or repeat, the last page saying there is no more', () => {
    const ps = pages(cat, { limit: 7 });
    assert.deepEqual(ps.map((p) => p.length), [7, 7, 7, 7, 7, 5]);
    assert.deepEqual(ps.flat(), Array.from({ length: 40 }, (_, i) => i + 1));
    assert.deepEqual(cat.list({ limit: 40 }).more, false);
  });

  it('keeps its place across deletes and inserts', () => {
    const first = cat.list({ limit: 10 });
    assert.ok(cat.remove(10) && cat.remove(11));
    const [added] = cat.addMany([{ ...items[0]!.image, source: 'late.jpg', bytes: Buffer.from('late') }]);
    const rest = pages(cat, { limit: 10 }).flat().filter((id) => id > first.images.at(-1)!.id);
    assert.deepEqual(rest, [...Array.from({ length: 29 }, (_, i) => i + 12), added!.id]);
  });

  it('filters by top label and by the verdict on one basis; other bases and unscored rows match neither', () => {
    const byLabel = pages(cat, { limit: 3, label: 'class-1' }).flat();
    assert.deepEqual(byLabel, pages(cat, { limit: 100 }).flat().filter((id) => cat.get(id)!.labels[0]!.label === 'class-1'));
    assert.ok(byLabel.length > 0);
    const rule = { basis: 'energy', threshold: 1.95 };
    const unknown = pages(cat, { limit: 4, ood: { ...rule, unknown: true } }).flat();
    const known = pages(cat, { limit: 4, ood: { ...rule, unknown: false } }).flat();
    // Ids are i + 1 and even i scored i / 10: known up to i = 18 (1.8), unknown from i = 20 (2.0); id 11 (i = 10) was deleted.
    assert.deepEqual(known, [1, 3, 5, 7, 9, 13, 15, 17, 19]);
    assert.deepEqual(unknown, [21, 23, 25, 27, 29, 31, 33, 35, 37, 39]);
  });

  it('refuses bad arguments naming them', () => {
    assert.throws(() => cat.list({ limit: 0 }), (e: unknown) => e instanceof IndexParamError && /'limit'.*got 0/.test(e.message));
    assert.throws(() => cat.list({ limit: 1001 }), IndexParamError);
    assert.throws(() => cat.list({ limit: 5, afterId: -1 }), (e: unknown) => e instanceof IndexParamError && /'afterId'/.test(e.message));
  });
});
