import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Catalog, IndexLockedError, IndexMissingError, IndexModelMismatchError, IndexParamError, IndexReadOnlyError, sha256Hex } from '../../index/index.js';
import { dataset, euclidean } from './fixtures/synthetic.js';
import { HASHES, openTest, tempDir } from './fixtures/catalog.js';

describe('catalog: rows', () => {
  const { dir, cleanup } = tempDir();
  const items = dataset({ n: 300, seed: 21 });
  let cat: Catalog;
  before(async () => {
    cat = await openTest(dir);
  });
  after(() => {
    cat.close();
    cleanup();
  });

  it('stores every field, labels sorted, embedding within float16 precision', () => {
    const [first] = cat.addMany(items.map((i) => i.image));
    assert.deepEqual(first, { id: 1, existed: false });
    const it0 = items[0]!;
    const rec = cat.get(1)!;
    assert.equal(rec.source, it0.image.source);
    assert.equal(rec.sha256, sha256Hex(it0.image.bytes!));
    assert.equal(rec.width, it0.image.width);
    assert.equal(rec.height, it0.image.height);
    assert.deepEqual(rec.labels.map((l) => l.label), [it0.label, it0.image.labels[1]!.label]);
    assert.deepEqual(rec.code, it0.code);
    assert.equal(rec.modelHash, HASHES.modelHash);
    assert.equal(rec.codesHash, HASHES.codesHash);
    assert.match(rec.createdAt, /^\d{4}-\d\d-\d\dT/);
    const emb = cat.embedding(1)!;
    assert.equal(emb.length, 4096);
    for (let d = 0; d < 4096; d++) assert.ok(Math.abs(emb[d]! - it0.embedding[d]!) <= Math.abs(it0.embedding[d]!) * 2 ** -11 + 1e-7);
    assert.equal(cat.stats().images, 300);
    assert.equal(cat.stats().indexSize, 300);
  });

  it('the same bytes twice return the existing id without a second row', () => {
    const gen = cat.meta.generation;
    const again = cat.add({ ...items[5]!.image, source: 'renamed-upload.jpg' });
    assert.deepEqual(again, { id: 6, existed: true });
    assert.equal(cat.stats().images, 300);
    assert.equal(cat.meta.generation, gen, 'no write, no generation bump');
    assert.equal(cat.get(6)!.source, items[5]!.image.source, 'the stored row is untouched');
    const bySha = cat.add({ ...items[7]!.image, bytes: undefined, sha256: sha256Hex(items[7]!.image.bytes!) });
    assert.deepEqual(bySha, { id: 8, existed: true });
    const fresh = dataset({ n: 1, seed: 22, offset: 10_000 })[0]!;
    const batch = cat.addMany([fresh.image, { ...fresh.image, source: 'dup-in-batch' }]);
    assert.deepEqual(batch, [{ id: 301, existed: false }, { id: 301, existed: true }]);
    assert.equal(cat.meta.generation, gen + 1, 'one bump per committed batch');
  });

  it('a failing item rolls back its whole batch', () => {
    const before = cat.stats().images;
    const fresh = dataset({ n: 2, seed: 23, offset: 20_000 });
    assert.throws(() => cat.addMany([fresh[0]!.image, { ...fresh[1]!.image, width: 0 }]), { message: "'width' must be an integer in [1, 1048576], got 0" });
    assert.equal(cat.stats().images, before);
    assert.throws(() => cat.add({ ...fresh[0]!.image, embedding: new Float32Array(10) }), { message: "'embedding' must be 4096 floats, got Float32Array(10)" });
    assert.throws(() => cat.add({ ...fresh[0]!.image, code: new Uint8Array(8) }), IndexParamError);
  });

  it('delete removes the row, its vectors and its search hits', () => {
    const target = items[10]!;
    assert.equal(cat.search({ code: target.code, embedding: target.embedding }, { k: 1 }).hits[0]!.id, 11);
    const gen = cat.meta.generation;
    assert.equal(cat.remove(11), true);
    assert.equal(cat.remove(11), false);
    assert.equal(cat.meta.generation, gen + 1);
    assert.equal(cat.get(11), undefined);
    assert.equal(cat.embedding(11), undefined);
    const hits = cat.search({ code: target.code, embedding: target.embedding }, { k: 100 }).hits;
    assert.ok(!hits.some((h) => h.id === 11));
    assert.equal(cat.stats().indexSize, cat.stats().images);
  });

  it('search parameters are validated with typed errors naming them', () => {
    const q = { code: items[0]!.code, embedding: items[0]!.embedding };
    const check = (fn: () => unknown, message: string): void =>
      assert.throws(fn, (e: unknown) => e instanceof IndexParamError && e.code === 'invalid_argument' && e.kind === 'invalid_argument' && e.message === message);
    check(() => cat.search(q, { k: 0 }), "'k' must be an integer in [1, 100], got 0");
    check(() => cat.search(q, { k: 101 }), "'k' must be an integer in [1, 100], got 101");
    check(() => cat.search(q, { k: 2.5 }), "'k' must be an integer in [1, 100], got 2.5");
    check(() => cat.search(q, { oversample: 0 }), "'oversample' must be an integer in [1, 100], got 0");
    check(() => cat.search(q, { label: '' }), "'label' must be a non-empty string of at most 200 characters, got ''");
    check(() => cat.search({ code: items[0]!.code }, {}), "'query.embedding' must be 4096 floats (or rerank: false), got undefined");
    check(() => cat.search({ code: new Uint8Array(3), embedding: items[0]!.embedding }), "'query.code' must be a packed code of 16 bytes (128 bits), got Uint8Array(3)");
    check(() => cat.remove(-1), "'id' must be a positive integer, got -1");
  });

  it('a second writer is refused while the first holds the directory', async () => {
    await assert.rejects(openTest(dir), (e: unknown) => e instanceof IndexLockedError && e.kind === 'conflict' && e.pid === process.pid);
  });

  it('a reader opens beside the writer, sees its unsaved rows, and writes nothing', async () => {
    // The writer's graph is behind SQLite (saveDelayMs null, never flushed): the reader rebuilds in memory.
    const graph = join(dir, 'index.hnsw');
    const before = existsSync(graph) ? statSync(graph).mtimeMs : undefined;
    const reader = await Catalog.open(dir, { readOnly: true });
    try {
      assert.equal(reader.readOnly, true);
      assert.equal(reader.stats().images, cat.stats().images);
      const q = items[20]!;
      assert.deepEqual(
        reader.search({ code: q.code, embedding: q.embedding }, { k: 5 }).hits.map((h) => h.id),
        cat.search({ code: q.code, embedding: q.embedding }, { k: 5 }).hits.map((h) => h.id),
      );
      const isReadOnly = (op: string) => (e: unknown) => e instanceof IndexReadOnlyError && e.kind === 'conflict' && e.message.includes(`cannot ${op}`);
      assert.throws(() => reader.add(dataset({ n: 1, seed: 23, offset: 20_000 })[0]!.image), isReadOnly('add images'));
      assert.throws(() => reader.remove(1), isReadOnly('delete images'));
      await assert.rejects(reader.rebuild(), isReadOnly('rebuild the graph'));
    } finally {
      reader.close();
    }
    assert.equal(existsSync(graph) ? statSync(graph).mtimeMs : undefined, before, 'the reader left the graph file alone');
    assert.ok(cat.add(dataset({ n: 1, seed: 24, offset: 30_000 })[0]!.image).id > 0, 'the writer still writes after the reader closed');
  });

  it('a reader never creates a database', async () => {
    const { dir: empty, cleanup: rm } = tempDir();
    try {
      await assert.rejects(Catalog.open(join(empty, 'none'), { readOnly: true }), IndexMissingError);
      assert.equal(existsSync(join(empty, 'none')), false);
    } finally {
      rm();
    }
  });
});

describe('catalog: model hashes', () => {
  it('a different model, code model or code length raises IndexModelMismatchError naming them', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const cat = await openTest(dir);
      cat.addMany(dataset({ n: 5, seed: 31 }).map((i) => i.image));
      cat.close();
      await assert.rejects(openTest(dir, { modelHash: 'model-cccc' }), (e: unknown) => {
        assert.ok(e instanceof IndexModelMismatchError);
        assert.equal(e.code, 'index_model_mismatch');
        assert.equal(e.kind, 'conflict');
        assert.deepEqual(e.differences, [{ field: 'model', stored: 'model-aaaa', loaded: 'model-cccc' }]);
        assert.match(e.message, /model differs \(stored 'model-aaaa', loaded 'model-cccc'\)/);
        assert.match(e.message, /npx sightline reindex/);
        return true;
      });
      await assert.rejects(openTest(dir, { codesHash: 'codes-x', bits: 64 }), (e: unknown) => {
        assert.ok(e instanceof IndexModelMismatchError);
        assert.deepEqual(e.differences.map((d) => d.field), ['code model', 'bits']);
        return true;
      });
      // The refused opens released the lock; admin tools that pass no hashes adopt the stored ones.
      const admin = await Catalog.open(dir, { saveDelayMs: null });
      assert.equal(admin.stats().model, 'model-aaaa');
      assert.equal(admin.stats().images, 5);
      admin.close();
      assert.ok(readFileSync(`${dir}/index.hnsw.json`, 'utf8').includes('"generation": 1'));
    } finally {
      cleanup();
    }
  });

  it('creating an index needs bits and both hashes', async () => {
    const { dir, cleanup } = tempDir();
    try {
      await assert.rejects(Catalog.open(dir, { modelHash: 'm', codesHash: 'c' }), /'bits' must be set to create a new index/);
      await assert.rejects(Catalog.open(dir, { bits: 128, codesHash: 'c' }), /'modelHash' must be set/);
      await assert.rejects(Catalog.open(dir, { bits: 100, ...HASHES }), /'bits' must be a multiple of 32/);
      // The refused attempts left at most an empty file; a proper open initialises it.
      const cat = await Catalog.open(dir, { bits: 64, ...HASHES, saveDelayMs: null });
      assert.deepEqual([cat.meta.bits, cat.meta.generation, cat.openReport.rebuilt], [64, 0, false]);
      cat.close();
    } finally {
      cleanup();
    }
  });
});

describe('catalog: search quality', () => {
  it('an image finds itself at distance 0 and the re-ranked top-k equals brute-force Euclidean', async () => {
    const { dir, cleanup } = tempDir();
    const items = dataset({ n: 400, clusters: 20, seed: 41 });
    const cat = await openTest(dir);
    try {
      cat.addMany(items.map((i) => i.image));
      for (const [qi, it] of items.slice(0, 25).entries()) {
        const res = cat.search({ code: it.code, embedding: it.embedding }, { k: 5 });
        assert.equal(res.engine, 'scan');
        assert.deepEqual({ id: res.hits[0]!.id, distance: res.hits[0]!.distance, hamming: res.hits[0]!.hamming }, { id: qi + 1, distance: 0, hamming: 0 });
        const stored = items.map((x, i) => ({ id: i + 1, d: euclidean(cat.embedding(i + 1)!, cat.embedding(qi + 1)!) }));
        const want = stored.sort((a, b) => a.d - b.d || a.id - b.id).slice(0, 5);
        assert.deepEqual(res.hits.map((h) => h.id), want.map((w) => w.id));
        res.hits.forEach((h, i) => assert.ok(Math.abs(h.distance! - want[i]!.d) < 1e-3));
        assert.equal(res.hits[0]!.source, it.image.source);
        assert.equal(res.hits[0]!.labels[0]!.label, it.label);
      }
    } finally {
      cat.close();
      cleanup();
    }
  });
});
