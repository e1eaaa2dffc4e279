/**
 * kill -9 at many points of `sightline index` and of a server indexing job. After the restarts the
 * database, the HNSW graph and the files agree (images = index entries = unique files) and the
 * job's counters are exact.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Catalog, DB_FILE } from '../../index/index.js';
import { tempDir } from '../server/helpers.js';
import { makeCorpus, type Corpus } from './fixtures/corpus.js';
import { listeningUrl, modelFlags, runCli, type Child } from './fixtures/proc.js';
import { faultReport } from './report.js';

const report = faultReport('kill -9');
const work = tempDir('sightline-faults-kill-');
after(() => work.cleanup());

function rows(db: string): number {
  if (!existsSync(join(db, DB_FILE))) return 0;
  try {
    const h = new Database(join(db, DB_FILE), { readonly: true, fileMustExist: true });
    try {
      return h.prepare('SELECT count(*) FROM images').pluck().get() as number;
    } finally {
      h.close();
    }
  } catch {
    return 0; // schema not created yet
  }
}

/** Polls `probe` every 25 ms until it is ≥ `at` (or the child exits); then kill -9. Returns what it saw. */
async function killWhen(child: Child, probe: () => Promise<number> | number, at: number): Promise<number> {
  let exited = false;
  void child.exited.then(() => (exited = true));
  for (;;) {
    const v = await probe();
    if (v >= at || exited) {
      await child.kill9();
      return v;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Opens the catalog (as the next start would) and checks images = graph entries = `unique`; no temp files left. */
async function assertConsistent(db: string, unique: number): Promise<{ rebuilt: boolean }> {
  const cat = await Catalog.open(db, { create: false, saveDelayMs: null });
  try {
    const s = cat.stats();
    assert.equal(s.images, unique, 'one row per unique file');
    assert.equal(s.indexSize, unique, 'the graph holds every row');
    assert.deepEqual(readdirSync(db).filter((f) => f.includes('.tmp')), [], 'no temp files');
    return { rebuilt: cat.openReport.rebuilt };
  } finally {
    cat.close();
  }
}

let corpus: Corpus;

describe('kill -9', () => {
  it('during `sightline index`, at several points, then a full run', { timeout: 180_000 }, async () => {
    corpus = await makeCorpus(join(work.path, 'photos'), 60, 6, 4);
    const db = join(work.path, 'cli-db');
    const args = ['index', corpus.dir, '--db', db, ...modelFlags()];
    for (const at of [1, 25, 45]) {
      const seen = await killWhen(runCli(args), () => rows(db), at);
      report.add({ kind: `kill -9 during index at ≥${at} rows`, outcome: `killed with ${seen} rows committed`, lost: 0 });
    }
    const last = runCli(args);
    assert.equal(await last.exited, 0, last.output());
    const { rebuilt } = await assertConsistent(db, corpus.unique);
    report.add({ kind: 'index after 3 kills', outcome: `images = graph = ${corpus.unique} unique files${rebuilt ? ' (graph rebuilt)' : ''}`, lost: 0 });
  });

  it('during a server job, at several points: resumed each time, counters exact', { timeout: 240_000 }, async () => {
    const db = join(work.path, 'job-db');
    const args = ['serve', '--db', db, '--port', '0', '--host', '127.0.0.1', '--no-demo', ...modelFlags()];
    const env = { SIGHTLINE_INDEX_ROOTS: corpus.dir, SIGHTLINE_JOB_CONCURRENCY: '2' };
    let server = runCli(args, { env });
    let url = await listeningUrl(server);
    const started = await fetch(`${url}/v1/jobs/index`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: corpus.dir }) });
    assert.equal(started.status, 202, await started.clone().text());
    const id = ((await started.json()) as { id: string }).id;
    const processed = async (): Promise<number> => {
      const res = await fetch(`${url}/v1/jobs/${id}`).catch(() => undefined);
      if (!res?.ok) return 0;
      const j = (await res.json()) as { done: number; skipped: number; failed: number; state: string };
      return j.state === 'done' ? Infinity : j.done + j.skipped + j.failed;
    };
    for (const at of [5, 30, 31]) {
      const seen = await killWhen(server, processed, at);
      report.add({ kind: `kill -9 during a job at ≥${at} files`, outcome: seen === Infinity ? 'job had finished' : `killed after ${seen} files`, lost: 0 });
      server = runCli(args, { env });
      url = await listeningUrl(server);
    }
    let job: Record<string, unknown> = {};
    for (let i = 0; i < 2400; i++) {
      job = (await (await fetch(`${url}/v1/jobs/${id}`)).json()) as Record<string, unknown>;
      if (job['state'] !== 'running' && job['state'] !== 'queued') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await server.kill9();
    const want = { state: 'done', done: corpus.unique, duplicates: corpus.copies, not_images: corpus.notImages, skipped: corpus.copies + corpus.notImages, failed: 0 };
    const got = Object.fromEntries(Object.keys(want).map((k) => [k, job[k]]));
    report.add({
      kind: 'job counters after 3 kills',
      outcome: `done ${String(got['done'])}/${corpus.unique}, duplicates ${String(got['duplicates'])}/${corpus.copies}, not_images ${String(got['not_images'])}/${corpus.notImages}`,
      lost: Math.max(0, corpus.unique - Number(got['done'])),
    });
    assert.deepEqual(got, want);
    await assertConsistent(db, corpus.unique);
  });
});
