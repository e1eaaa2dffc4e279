/**
 * kill -9 of `sightline reindex --codes` on a PostgreSQL catalog (a throw-away PostgreSQL 15 cluster;
 * skipped without it, Debian package: postgresql) once some batches are staged: the catalog still
 * serves the old codes exactly as before (same answers, same generation, 128 bits), and the rerun
 * resumes and switches every image to the new codes model.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { IndexModelMismatchError, openPostgresWith, poolClient } from '../../index/index.js';
import { createCodesSession } from '../../model/index.js';
import { postgresSkipReason, startPostgres, type PgCluster } from '../../testing/postgres.js';
import { writeCodesModel } from '../index/fixtures/codes-model.js';
import { dataset } from '../index/fixtures/synthetic.js';
import { tempDir } from '../server/helpers.js';
import { runCli } from './fixtures/proc.js';

const DIM = 256;
const MODEL = 'ab'.repeat(32);
const N = 4000;

describe('kill -9 during reindex --codes on PostgreSQL', { skip: postgresSkipReason() }, () => {
  const work = tempDir('sightline-faults-reindex-pg-');
  let cluster: PgCluster | undefined;
  after(async () => {
    await cluster?.stop();
    work.cleanup();
  });

  it('leaves the old codes serving, then the rerun resumes and switches', { timeout: 300_000 }, async () => {
    cluster = await startPostgres();
    const url = await cluster.createDatabase();
    const items = dataset({ n: N, dim: DIM, clusters: 80, seed: 71 });
    const opts = { bits: 128, embeddingDim: DIM, modelHash: MODEL, codesHash: 'codes-v1' };
    const cat = await openPostgresWith(poolClient(url, url), opts);
    try {
      for (let i = 0; i < N; i += 500) await cat.addMany(items.slice(i, i + 500).map((x) => x.image));
      const codesPath = join(work.path, 'codes-64.onnx');
      writeCodesModel(codesPath, { bits: 64, modelHash: MODEL, dim: DIM, seed: 3 });
      const queries = items.filter((_, i) => i % 400 === 0).map((x) => ({ code: x.code, embedding: x.embedding }));
      const answers = async () => Promise.all(queries.map(async (q) => (await cat.search(q, { k: 10 })).hits.map((h) => h.id)));
      const before = await answers();
      const generation = await cat.generation();
      const staged = async (): Promise<number> => {
        try {
          return Number((await cat.db.query<{ n: unknown }>('SELECT count(*) AS n FROM reembed_rows')).rows[0]?.n);
        } catch {
          return 0; // not created yet
        }
      };

      const child = runCli(['reindex', '--db', url, '--codes', codesPath]);
      let seen = 0;
      for (let exited = false; !exited; ) {
        seen = await staged();
        if (seen >= 640) break;
        exited = child.proc.exitCode !== null;
        await new Promise((r) => setTimeout(r, 25));
      }
      await child.kill9();
      assert.equal(await child.exited, 'SIGKILL', `killed mid-way, not finished:\n${child.output()}`);
      assert.ok(seen >= 640 && (await staged()) < N, `some batches staged (${await staged()}), not all`);

      assert.deepEqual(await answers(), before, 'the old codes serve the same answers');
      assert.equal(await cat.generation(), generation);
      assert.equal((await cat.stats()).bits, 128);

      const rerun = runCli(['reindex', '--db', url, '--codes', codesPath]);
      assert.equal(await rerun.exited, 0, rerun.output());
      assert.match(rerun.output(), new RegExp(`recomputed ${N} codes \\(64 bits\\)`));
      await assert.rejects(cat.search(queries[0]!, { k: 10 }), IndexModelMismatchError);

      const codesHash = createHash('sha256').update(readFileSync(codesPath)).digest('hex');
      const fresh = await openPostgresWith(poolClient(url, url), { ...opts, bits: 64, codesHash });
      const codes = await createCodesSession(codesPath);
      try {
        assert.equal(await fresh.count(), N);
        for (const id of [1, 700, 1999, 3500, N]) assert.deepEqual((await fresh.get(id))!.code, await codes.encode((await fresh.embedding(id))!, 1), `image ${id}`);
        const q = { code: (await fresh.get(1234))!.code, embedding: (await fresh.embedding(1234))! };
        assert.equal((await fresh.search(q, { k: 1 })).hits[0]?.id, 1234);
      } finally {
        await codes.close();
        await fresh.close();
      }
    } finally {
      await cat.close();
    }
  });
});
