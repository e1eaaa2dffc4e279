/**
 * `sightline migrate` between a SQLite folder and a real PostgreSQL 15 (testing/postgres.ts;
 * Debian package: postgresql), through the CLI: SQLite → PostgreSQL → SQLite keeps every image
 * with its embedding bit for bit, its code, labels and unknown-image score, and its other paths;
 * search answers the same images on all three; an interrupted copy resumes (what is there is
 * skipped); a destination made for another model is refused with exit 1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { type CatalogBackend, openBackend, parseDbLocation, SqliteBackend } from '../../index/index.js';
import { postgresSkipReason, startPostgres } from '../../testing/postgres.js';
import type { PgCluster } from '../../testing/postgres.js';
import { HASHES, tempDir } from '../index/fixtures/catalog.js';
import { dataset } from '../index/fixtures/synthetic.js';

const skip = postgresSkipReason();
const BIN = new URL('../../bin/sightline.js', import.meta.url).pathname;
const DIM = 64;
const items = dataset({ n: 230, dim: DIM, clusters: 12, seed: 7 }).map((x, i) => (i % 4 === 0 ? { ...x, image: { ...x.image, ood: { score: i / 10, basis: 'energy' } } } : x));
const tmp = tempDir();
let cluster: PgCluster | undefined;

function migrate(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'migrate', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function open(where: string): Promise<CatalogBackend> {
  return openBackend(parseDbLocation(where), { readOnly: true, create: false });
}

/** Everything migrate promises to keep, keyed by SHA-256 (ids are each catalog's own). */
async function contents(cat: CatalogBackend): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let afterId = 0; ; ) {
    const page = await cat.list({ afterId, limit: 100 });
    for (const r of page.images) {
      const e = await cat.embedding(r.id);
      out.set(r.sha256, JSON.stringify([r.source, r.width, r.height, r.labels, Buffer.from(r.code).toString('hex'), r.ood, Buffer.from((e as Float32Array).buffer).toString('base64')]));
    }
    const last = page.images.at(-1);
    if (!page.more || !last) return out;
    afterId = last.id;
  }
}

async function searchShas(cat: CatalogBackend): Promise<string[][]> {
  const out: string[][] = [];
  for (const q of items.filter((_, i) => i % 23 === 0)) {
    const hits = (await cat.search({ code: q.code, embedding: q.embedding }, { k: 10 })).hits;
    out.push(await Promise.all(hits.map(async (h) => (await cat.get(h.id))?.sha256 ?? '?')));
  }
  return out;
}

describe('sightline migrate between SQLite and PostgreSQL', { skip }, () => {
  const sqliteDir = join(tmp.dir, 'sqlite');
  const backDir = join(tmp.dir, 'back');
  let pgUrl = '';
  before(async () => {
    cluster = await startPostgres();
    pgUrl = await cluster.createDatabase();
    const src = await SqliteBackend.open(sqliteDir, { bits: 128, embeddingDim: DIM, ...HASHES, saveDelayMs: null });
    await src.addMany(items.map((x) => x.image));
    // Another path of already stored bytes: recorded as a copy, not a second image.
    const first = items[0];
    assert.ok(first);
    assert.equal((await src.add({ ...first.image, source: '/photos/elsewhere/copy.png' })).existed, true);
    // A deleted image leaves a gap in the ids.
    assert.ok(await src.remove(5));
    await src.close();
    // An interrupted earlier run: 40 images already in the destination.
    const dst = await openBackend(parseDbLocation(pgUrl), { bits: 128, embeddingDim: DIM, ...HASHES });
    await dst.addMany(items.slice(10, 50).map((x) => x.image));
    await dst.close();
  });
  after(async () => {
    await cluster?.stop();
    tmp.cleanup();
  });

  test('SQLite → PostgreSQL: resumes past what is there, keeps every field, same search answers', async () => {
    const run = migrate('--from', sqliteDir, '--to', pgUrl, '--batch', '50', '--json');
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { total: number; copied: number; present: number; copies: number; destination: number };
    assert.deepEqual(report, { total: 229, copied: 189, present: 40, copies: 1, destination: 229 });
    const [src, dst] = [await open(sqliteDir), await open(pgUrl)];
    try {
      assert.deepEqual(await contents(dst), await contents(src), 'same images, embeddings bit for bit');
      assert.deepEqual((await dst.copies()).map((c) => c.source), ['/photos/elsewhere/copy.png']);
      assert.deepEqual(await searchShas(dst), await searchShas(src));
    } finally {
      await Promise.all([src.close(), dst.close()]);
    }
    const again = migrate('--from', sqliteDir, '--to', pgUrl, '--json');
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), { total: 229, copied: 0, present: 229, copies: 1, destination: 229 }, 'a second run copies nothing');
  });

  test('PostgreSQL → SQLite: the same catalog back', async () => {
    const run = migrate('--from', pgUrl, '--to', backDir);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /229 images, 229 copied, 0 already there, 1 other paths; the destination holds 229/);
    const [src, back] = [await open(sqliteDir), await open(backDir)];
    try {
      assert.deepEqual(await contents(back), await contents(src));
      assert.deepEqual(await searchShas(back), await searchShas(src));
    } finally {
      await Promise.all([src.close(), back.close()]);
    }
  });

  test('a destination made for another model is refused (exit 1), and nothing is written', async () => {
    const other = await cluster?.createDatabase();
    assert.ok(other);
    const dst = await openBackend(parseDbLocation(other), { bits: 128, embeddingDim: DIM, modelHash: 'another-model', codesHash: HASHES.codesHash });
    await dst.close();
    const run = migrate('--from', sqliteDir, '--to', other);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^sightline: .*model/m);
    const check = await open(other);
    try {
      assert.equal(await check.count(), 0);
    } finally {
      await check.close();
    }
  });
});
