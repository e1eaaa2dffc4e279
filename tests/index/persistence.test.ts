import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { copyFileSync, existsSync, readFileSync, rmSync, truncateSync, writeFileSync, openSync, writeSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { HNSW_FILE, SIDECAR_FILE } from '../../index/index.js';
import { dataset } from './fixtures/synthetic.js';
import { openTest, runQueries, tempDir } from './fixtures/catalog.js';

const HNSW_ONLY = { scanThreshold: 0 };

describe('persistence and rebuild', () => {
  const { dir, cleanup } = tempDir();
  const items = dataset({ n: 1500, seed: 51 });
  const queries = items.filter((_, i) => i % 50 === 0);
  let baseline: ReturnType<typeof runQueries>;
  const hnswPath = join(dir, HNSW_FILE);
  const sidecarPath = join(dir, SIDECAR_FILE);

  before(async () => {
    const cat = await openTest(dir, HNSW_ONLY);
    for (let i = 0; i < items.length; i += 250) cat.addMany(items.slice(i, i + 250).map((x) => x.image));
    assert.equal(cat.search({ code: queries[0]!.code, embedding: queries[0]!.embedding }).engine, 'hnsw');
    baseline = runQueries(cat, queries);
    cat.close();
  });
  after(cleanup);

  async function reopenAndCompare(): Promise<{ rebuilt: boolean; reason?: string; progress: [number, number][] }> {
    const progress: [number, number][] = [];
    const cat = await openTest(dir, { ...HNSW_ONLY, onProgress: (d, t) => progress.push([d, t]) });
    try {
      assert.deepEqual(runQueries(cat, queries), baseline);
      assert.equal(cat.stats().indexSize, items.length);
      return { ...cat.openReport, progress };
    } finally {
      cat.close();
    }
  }

  it('close + reopen loads the saved graph (no rebuild) and answers identically', async () => {
    const r = await reopenAndCompare();
    assert.equal(r.rebuilt, false);
    assert.deepEqual(r.progress, []);
    const sc = JSON.parse(readFileSync(sidecarPath, 'utf8')) as Record<string, unknown>;
    assert.equal(sc['count'], 1500);
    assert.equal(sc['generation'], 6, 'six committed batches');
    assert.equal(sc['bytes'], statSync(hnswPath).size);
  });

  it('a missing graph file is rebuilt from SQLite with progress', async () => {
    rmSync(hnswPath);
    const r = await reopenAndCompare();
    assert.equal(r.rebuilt, true);
    assert.equal(r.reason, 'index file missing');
    assert.deepEqual(r.progress.at(-1), [1500, 1500]);
    assert.deepEqual(r.progress[0], [0, 1500]);
    assert.ok(existsSync(hnswPath), 'rebuilt graph saved');
    assert.equal((await reopenAndCompare()).rebuilt, false);
  });

  it('a corrupted graph file (bytes flipped) is detected and rebuilt', async () => {
    const fd = openSync(hnswPath, 'r+');
    writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, Math.floor(statSync(hnswPath).size / 2));
    closeSync(fd);
    const r = await reopenAndCompare();
    assert.equal(r.rebuilt, true);
    assert.match(r.reason!, /corrupt/);
  });

  it('a truncated graph that hnswlib refuses to read is rebuilt, even with a matching sidecar', async () => {
    truncateSync(hnswPath, 4000);
    const sc = JSON.parse(readFileSync(sidecarPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(sidecarPath, JSON.stringify({ ...sc, bytes: 4000, crc32: crc32(readFileSync(hnswPath)) }));
    const r = await reopenAndCompare();
    assert.equal(r.rebuilt, true);
    assert.match(r.reason!, /unreadable/);
  });

  it('a garbage sidecar is rebuilt', async () => {
    writeFileSync(sidecarPath, '{"format": 1, "generation": "x"');
    const r = await reopenAndCompare();
    assert.equal(r.rebuilt, true);
    assert.match(r.reason!, /sidecar unreadable/);
  });

  it('a graph older than the database (stale generation) is rebuilt and includes the new rows', async () => {
    copyFileSync(hnswPath, `${hnswPath}.old`);
    copyFileSync(sidecarPath, `${sidecarPath}.old`);
    const extra = dataset({ n: 40, seed: 52, offset: 50_000 });
    let cat = await openTest(dir, HNSW_ONLY);
    cat.addMany(extra.map((x) => x.image));
    cat.close();
    copyFileSync(`${hnswPath}.old`, hnswPath);
    copyFileSync(`${sidecarPath}.old`, sidecarPath);
    rmSync(`${hnswPath}.old`);
    rmSync(`${sidecarPath}.old`);
    cat = await openTest(dir, HNSW_ONLY);
    try {
      assert.equal(cat.openReport.rebuilt, true);
      assert.match(cat.openReport.reason!, /^stale: index generation 6, database generation 7/);
      for (const [i, x] of extra.entries()) {
        const hit = cat.search({ code: x.code, embedding: x.embedding }, { k: 1 }).hits[0]!;
        assert.deepEqual([hit.id, hit.distance], [1501 + i, 0]);
      }
    } finally {
      cat.close();
    }
  });

  it('deletes survive a reopen without a rebuild', async () => {
    let cat = await openTest(dir, HNSW_ONLY);
    const gone = [1, 2, 3, 500, 1501];
    for (const id of gone) assert.ok(cat.remove(id));
    cat.close();
    cat = await openTest(dir, HNSW_ONLY);
    try {
      assert.equal(cat.openReport.rebuilt, false);
      assert.equal(cat.stats().images, 1540 - gone.length);
      assert.equal(cat.stats().indexSize, 1540 - gone.length);
      for (const id of gone) {
        const x = id > 1500 ? dataset({ n: 1, seed: 52, offset: 50_000 })[0]! : items[id - 1]!;
        const res = cat.search({ code: x.code, embedding: x.embedding }, { k: 100 });
        assert.equal(res.engine, 'hnsw');
        assert.ok(!res.hits.some((h) => gone.includes(h.id)), `deleted ${id} not returned`);
      }
    } finally {
      cat.close();
    }
  });

  it('the debounced background save writes the graph without flush()', async () => {
    const cat = await openTest(dir, { ...HNSW_ONLY, saveDelayMs: 20 });
    try {
      cat.add(dataset({ n: 1, seed: 53, offset: 60_000 })[0]!.image);
      const gen = cat.meta.generation;
      for (let i = 0; i < 500 && cat.stats().unsaved; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(cat.stats().unsaved, false);
      assert.equal((JSON.parse(readFileSync(sidecarPath, 'utf8')) as { generation: number }).generation, gen);
    } finally {
      cat.close();
    }
  });

  it('a failure after the SQLite commit (graph update throws) forces a rebuild instead of saving a wrong graph', async () => {
    const extra = dataset({ n: 3, seed: 54, offset: 70_000 });
    let cat = await openTest(dir, HNSW_ONLY);
    cat.hnsw.add = () => {
      throw new Error('simulated hnswlib failure');
    };
    assert.throws(() => cat.addMany(extra.map((x) => x.image)), /simulated hnswlib failure/);
    assert.ok(!existsSync(sidecarPath), 'sidecar withdrawn');
    cat.close();
    assert.ok(!existsSync(sidecarPath), 'close did not save the broken graph');
    cat = await openTest(dir, HNSW_ONLY);
    try {
      assert.equal(cat.openReport.rebuilt, true);
      for (const x of extra) {
        const hit = cat.search({ code: x.code, embedding: x.embedding }, { k: 1 }).hits[0]!;
        assert.equal(hit.distance, 0, 'the committed rows are searchable after the rebuild');
      }
    } finally {
      cat.close();
    }
  });

  it('a saved empty graph reopens with room to grow (it loaded with capacity 0 and crashed)', async () => {
    const { dir: empty, cleanup } = tempDir();
    try {
      (await openTest(empty)).close();
      let cat = await openTest(empty, HNSW_ONLY);
      const items = dataset({ n: 300, clusters: 300, seed: 55, offset: 80_000 });
      try {
        assert.equal(cat.openReport.rebuilt, false, 'the empty graph file itself was loaded');
        assert.ok(cat.hnsw.capacity >= 64, `capacity ${cat.hnsw.capacity}`);
        for (const x of items) cat.add(x.image);
        assert.equal(cat.stats().indexSize, 300);
      } finally {
        cat.close();
      }
      cat = await openTest(empty, HNSW_ONLY);
      try {
        assert.equal(cat.openReport.rebuilt, false);
        for (const x of items.slice(0, 20)) assert.equal(cat.search({ code: x.code, embedding: x.embedding }, { k: 1 }).hits[0]?.distance, 0);
      } finally {
        cat.close();
      }
    } finally {
      cleanup();
    }
  });

  it('when the graph cannot grow, nothing is written to SQLite', async () => {
    const extra = dataset({ n: 2, seed: 56, offset: 90_000 });
    const cat = await openTest(dir, HNSW_ONLY);
    try {
      const before = cat.stats().images;
      cat.hnsw.reserve = () => {
        throw new Error('Hnswlib Error: Not enough memory: resizeIndex failed to allocate base layer');
      };
      assert.throws(() => cat.addMany(extra.map((x) => x.image)), /Not enough memory/);
      assert.equal(cat.stats().images, before, 'no row committed');
    } finally {
      cat.close();
    }
  });
});
