/**
 * Each kind of damage to the files in DATA, with its expected outcome: the graph and its sidecar
 * are rebuilt from SQLite, a damaged WAL's losses are counted at warn level, and a truncated
 * jobs.json keeps the jobs that can be read and rebuilds the others from their journals.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { HNSW_FILE, SIDECAR_FILE } from '../../index/index.js';
import { JobManager } from '../../server/jobs.js';
import type { IndexRunOptions } from '../../server/services/indexing.js';
import type { WalkEntry } from '../../server/services/walk.js';
import { openTest, tempDir } from '../index/fixtures/catalog.js';
import { dataset } from '../index/fixtures/synthetic.js';
import { faultReport } from './report.js';

const report = faultReport('storage damage');
const tmp = tempDir();
after(() => tmp.cleanup());
let n = 0;
const freshDir = (): string => {
  const d = join(tmp.dir, `d${n++}`);
  mkdirSync(d);
  return d;
};

/** A catalog with `count` images (saved graph), closed. */
async function seeded(dir: string, count: number): Promise<void> {
  const cat = await openTest(dir);
  if (count > 0) cat.addMany(dataset({ n: count, seed: 3 }).map((x) => x.image));
  cat.close();
}

async function reopenCheck(dir: string, want: number): Promise<{ rebuilt: boolean; reason?: string; warnings: string[] }> {
  const cat = await openTest(dir, { scanThreshold: 0 });
  try {
    assert.equal(cat.stats().images, want);
    assert.equal(cat.stats().indexSize, want);
    return cat.openReport;
  } finally {
    cat.close();
  }
}

describe('graph and sidecar damage', () => {
  it('an empty saved graph reopens and grows', async () => {
    const dir = freshDir();
    await seeded(dir, 0);
    const cat = await openTest(dir);
    try {
      cat.addMany(dataset({ n: 150, clusters: 150, seed: 4 }).map((x) => x.image));
      assert.equal(cat.stats().indexSize, 150);
    } finally {
      cat.close();
    }
    await reopenCheck(dir, 150);
    report.add({ kind: 'empty saved graph, then 150 adds', outcome: 'loaded with room to grow', lost: 0 });
  });

  for (const [kind, damage] of [
    ['graph truncated to half', (dir: string) => truncateSync(join(dir, HNSW_FILE), Math.floor(statSync(join(dir, HNSW_FILE)).size / 2))],
    ['graph truncated to 0 bytes', (dir: string) => truncateSync(join(dir, HNSW_FILE), 0)],
    ['sidecar garbage', (dir: string) => writeFileSync(join(dir, SIDECAR_FILE), '{"format":1,"generation":')],
    ['sidecar emptied', (dir: string) => writeFileSync(join(dir, SIDECAR_FILE), '')],
  ] as const) {
    it(`${kind}: rebuilt from SQLite`, async () => {
      const dir = freshDir();
      await seeded(dir, 120);
      damage(dir);
      const r = await reopenCheck(dir, 120);
      assert.equal(r.rebuilt, true, kind);
      report.add({ kind, outcome: `graph rebuilt (${r.reason ?? ''})`.slice(0, 70), lost: 0 });
    });
  }
});

describe('WAL damage', () => {
  it('a damaged frame: the lost transactions are counted and reported, the rest recovered', async () => {
    const live = freshDir();
    const cat = await openTest(live);
    for (let i = 0; i < 10; i++) cat.addMany(dataset({ n: 10, seed: 10 + i, offset: i * 1000 }).map((x) => x.image));
    cat.flush();
    // Copy the files as a crash would leave them (WAL not checkpointed), then damage a frame in the middle.
    const dir = freshDir();
    for (const f of ['sightline.db', 'sightline.db-wal', HNSW_FILE, SIDECAR_FILE]) copyFileSync(join(live, f), join(dir, f));
    cat.close();
    const wal = readFileSync(join(dir, 'sightline.db-wal'));
    const at = Math.floor(wal.length / 2);
    wal[at] = (wal[at] as number) ^ 0xff;
    writeFileSync(join(dir, 'sightline.db-wal'), wal);
    const reopened = await openTest(dir);
    try {
      const rows = reopened.stats().images;
      const { warnings } = reopened.openReport;
      assert.ok(rows < 100 && rows % 10 === 0, `whole transactions kept (${rows})`);
      assert.match(warnings.join('\n'), /write-ahead log is damaged.*holding (\d+) committed transactions are lost/);
      assert.match(warnings.join('\n'), new RegExp(`100 images then, ${rows} now: ${100 - rows} fewer`));
      report.add({ kind: 'WAL frame damaged (10 commits of 10 rows)', outcome: `warned: ${(100 - rows) / 10} transactions, ${100 - rows} images lost; copy of the WAL kept`, lost: 100 - rows });
    } finally {
      reopened.close();
    }
  });
});

describe('jobs.json damage', () => {
  /** A fake indexing run that reports every file as added (the job manager is real). */
  const indexing = {
    calls: [] as string[][],
    async run(entries: readonly WalkEntry[], opts: IndexRunOptions): Promise<void> {
      indexing.calls.push(entries.map((e) => e.path));
      entries.forEach((e, i) => opts.onOutcome?.(i, e, { kind: 'added', id: i + 1 }));
      await Promise.resolve();
    },
  };

  it('a truncated jobs.json keeps the whole jobs, rebuilds an interrupted one from its journal, and says so at warn', async () => {
    const data = freshDir();
    const folder = join(data, 'pics');
    mkdirSync(folder);
    for (let i = 0; i < 6; i++) writeFileSync(join(folder, `${i}.png`), 'x');
    const stateFile = join(data, 'jobs.json');
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (s: string) => void lines.push(s) });
    const m1 = new JobManager(indexing, { roots: [data], stateFile, concurrency: 1, logger });
    const a = await m1.start(folder, false);
    const b = await m1.start(folder, false);
    await m1.idle();
    assert.equal(m1.get(b.id).done, 6);
    // An interrupted third job: its journal lists 2 files; jobs.json is then cut inside its entry.
    const c = await m1.start(folder, false);
    await m1.idle();
    const journal = join(data, 'jobs', `${c.id}.jsonl`);
    const started = (JSON.parse(readFileSync(stateFile, 'utf8')) as { id: string; started_at: string }[]).find((j) => j.id === c.id)!.started_at;
    writeFileSync(journal, [JSON.stringify({ job: { id: c.id, path: folder, realPath: folder, recursive: false, started_at: started } }), ...['0', '1'].map((f) => JSON.stringify({ f: join(folder, `${f}.png`), k: 'added' })), '{"f":"torn'].join('\n'));
    const text = readFileSync(stateFile, 'utf8');
    writeFileSync(stateFile, text.slice(0, text.indexOf(c.id) + 10));

    const m2 = new JobManager(indexing, { roots: [data], stateFile, concurrency: 1, logger });
    const warned = lines.join('');
    assert.match(warned, /job state file damaged/);
    assert.match(warned, /recovered from its journal/);
    assert.match(warned, /unreadable lines/);
    assert.equal(m2.get(a.id).done, 6, 'whole entries kept');
    assert.equal(m2.get(b.id).done, 6);
    assert.equal(m2.get(c.id).state, 'interrupted');
    indexing.calls.length = 0;
    assert.deepEqual(m2.resumeInterrupted(), [c.id]);
    await m2.idle();
    assert.equal(indexing.calls[0]?.length, 4, 'the resumed job skips the 2 journaled files');
    const done = m2.get(c.id);
    assert.deepEqual([done.state, done.done, done.skipped, done.failed], ['done', 6, 0, 0]);
    // The rewrite is whole again.
    assert.equal((JSON.parse(readFileSync(stateFile, 'utf8')) as unknown[]).length, 3);
    report.add({ kind: 'jobs.json truncated inside an interrupted job', outcome: 'warned; 2 jobs kept, 1 rebuilt from its journal and resumed (6/6)', lost: 0 });
  });
});
