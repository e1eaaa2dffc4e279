import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DB_FILE } from '../../index/index.js';
import { openTest, tempDir } from './fixtures/catalog.js';

/** Runs the writer until it reports `stopAt` images, then SIGKILLs it; resolves with what it printed last. */
function runAndKill(dir: string, stopAt: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'crash-writer.ts'), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let last = 0;
    let stderr = '';
    let buf = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) last = Number(/^added (\d+)$/.exec(l)?.[1] ?? last);
      if (last >= stopAt && child.exitCode === null && !child.killed) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(last);
      else reject(new Error(`writer exited with ${code}: ${stderr}`));
    });
  });
}

describe('crash safety', () => {
  it('a writer SIGKILLed mid-batch leaves a consistent database and index after reopen', { timeout: 120_000 }, async () => {
    const { dir, cleanup } = tempDir();
    try {
      // Two kills at different points: the second lands on a directory that already has a saved graph.
      const reported = [await runAndKill(dir, 200), await runAndKill(dir, 450)];
      const db = new Database(join(dir, DB_FILE), { readonly: true });
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      const rows = db.prepare('SELECT count(*) FROM images').pluck().get() as number;
      const embs = db.prepare('SELECT count(*) FROM embeddings').pluck().get() as number;
      db.close();
      assert.equal(embs, rows, 'no orphan or missing embedding');
      assert.equal(rows % 25, 0, 'batches are all-or-nothing');
      assert.ok(rows >= reported[1]!, `every reported batch is committed (${rows} ≥ ${reported[1]})`);

      const cat = await openTest(dir, { scanThreshold: 0 });
      try {
        assert.ok(!readdirSync(dir).some((f) => f.includes('.tmp-')), 'temp files of an interrupted save are cleaned up');
        assert.equal(cat.stats().images, rows);
        assert.equal(cat.stats().indexSize, rows);
        for (let id = 1; id <= rows; id++) {
          const rec = cat.get(id)!;
          const res = cat.search({ code: rec.code, embedding: cat.embedding(id)! }, { k: 1 });
          assert.equal(res.engine, 'hnsw');
          assert.deepEqual([res.hits[0]?.id, res.hits[0]?.distance], [id, 0], `image ${id} is searchable`);
        }
      } finally {
        cat.close();
      }
      const again = await openTest(dir);
      assert.equal(again.openReport.rebuilt, false, 'the repaired graph was saved');
      again.close();
    } finally {
      cleanup();
    }
  });
});
