import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_NEAR_DUP_RELATIVE, findDuplicatesIn, type NewImage } from '../../index/index.js';
import { dataset, euclidean, flipBits, rng, type SynthItem } from './fixtures/synthetic.js';
import { openTest, tempDir } from './fixtures/catalog.js';

function variant(base: SynthItem, tag: string, code: Uint8Array, embedding: Float32Array): NewImage {
  return { ...base.image, source: `${base.image.source}#${tag}`, bytes: Buffer.from(`${tag} of ${base.image.source}`), code, embedding };
}

describe('near-duplicate groups', () => {
  it('groups pairs within the embedding threshold wherever their codes are, transitively, like brute force', async () => {
    const rand = rng(71);
    const base = dataset({ n: 300, clusters: 15, seed: 71 });
    const jitter = (e: Float32Array): Float32Array => e.map((v) => v * (1 + 0.02 * (rand() - 0.5)));
    const extra: NewImage[] = [];
    // 20 resized/re-encoded copies: 0–2 bits flipped, embedding within ~1%.
    for (let i = 0; i < 20; i++) extra.push(variant(base[i]!, 'copy', flipBits(base[i]!.code, 128, i % 3, rand), jitter(base[i]!.embedding)));
    // A chain 20 → a → b: a and b are 4 bits apart, joined only through the base.
    const a = flipBits(base[20]!.code, 128, 0, rand);
    a[0] = (a[0] as number) ^ 0b11;
    const b = flipBits(base[20]!.code, 128, 0, rand);
    b[1] = (b[1] as number) ^ 0b11;
    extra.push(variant(base[20]!, 'chain-a', a, jitter(base[20]!.embedding)), variant(base[20]!, 'chain-b', b, jitter(base[20]!.embedding)));
    // Same code, unrelated content: a Hamming collision the embedding check must reject.
    for (let i = 30; i < 40; i++) extra.push(variant(base[i]!, 'collision', base[i]!.code, base[(i + 150) % 300]!.embedding));
    // Same content, code 10 bits away (a resized photo can move that far): still a near-duplicate.
    for (let i = 40; i < 50; i++) extra.push(variant(base[i]!, 'far', flipBits(base[i]!.code, 128, 0, rand).map((v, j) => (j === 5 ? v ^ 0xff : j === 6 ? v ^ 0b11 : v)), jitter(base[i]!.embedding)));

    const { dir, cleanup } = tempDir();
    const cat = await openTest(dir);
    try {
      cat.addMany(base.map((x) => x.image));
      cat.addMany(extra);
      // An exact copy under another path: skipped at index time, recorded.
      cat.add({ ...base[60]!.image, source: 'elsewhere/same-bytes.jpg' });
      const groups = cat.duplicates();
      assert.equal(DEFAULT_NEAR_DUP_RELATIVE > 0, true);

      // Brute force over all pairs with the same rule.
      const n = cat.stats().images;
      const embs = Array.from({ length: n }, (_, i) => cat.embedding(i + 1)!);
      const norm = (e: Float32Array): number => Math.sqrt(e.reduce((s, v) => s + v * v, 0));
      const pairs: string[] = [];
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          if (euclidean(embs[i]!, embs[j]!) <= DEFAULT_NEAR_DUP_RELATIVE * ((norm(embs[i]!) + norm(embs[j]!)) / 2)) pairs.push(`${i + 1}-${j + 1}`);
        }
      }
      const found = groups.flatMap((g) => g.pairs.map((p) => `${p.a}-${p.b}`)).sort();
      assert.deepEqual(found, pairs.sort());

      const groupOf = (id: number): number[] | undefined => groups.find((g) => g.ids.includes(id))?.ids;
      for (let i = 0; i < 20; i++) assert.deepEqual(groupOf(i + 1), [i + 1, 301 + i], `copy of ${i + 1}`);
      assert.deepEqual(groupOf(21), [21, 321, 322], 'the chain is one group');
      for (let i = 30; i < 40; i++) assert.equal(groupOf(i + 1), undefined, 'collisions are not duplicates');
      for (let i = 40; i < 50; i++) assert.deepEqual(groupOf(i + 1), [i + 1, 333 + i - 40], 'a copy 10 bits away is found');
      assert.equal(groups[0]!.ids.length, 3, 'largest group first');

      // The read-only path (the CLI's) sees the same groups, with sources.
      cat.flush();
      const ro = findDuplicatesIn(dir);
      assert.deepEqual(ro.groups.map((g) => g.ids), groups.map((g) => g.ids));
      assert.equal(ro.groups[0]!.members[1]!.source, `${base[20]!.image.source}#chain-a`);
      assert.deepEqual(ro.exact, [{ id: 61, source: base[60]!.image.source, copies: ['elsewhere/same-bytes.jpg'] }]);

      // A tight absolute threshold keeps only the closest copies; bad thresholds name the option.
      const tight = cat.duplicates({ maxDistance: 0 });
      assert.ok(tight.every((g) => g.pairs.every((p) => p.distance === 0)));
      assert.throws(() => cat.duplicates({ maxRelativeDistance: 3 }), { message: "'maxRelativeDistance' must be a number in (0, 2], got 3" });
      assert.throws(() => cat.duplicates({ neighbours: 0 }), { message: "'neighbours' must be an integer in [1, 99], got 0" });
    } finally {
      cat.close();
      cleanup();
    }
  });
});
