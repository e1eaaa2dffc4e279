import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, startServer } from '../../server/index.js';
import type { JobView } from '../../server/index.js';
import { createLogger } from '../../server/logging.js';
import { DEMO_DIR, demoImage, tempDir, testCodesPath, testModelPath } from './helpers.js';

const work = tempDir('sightline-shutdown-');
const photos = join(work.path, 'photos');
const data = join(work.path, 'data');
after(() => work.cleanup());

function config() {
  return loadConfig(
    { modelPath: testModelPath(), codesPath: testCodesPath(), dataDir: data, host: '127.0.0.1', port: 0, demo: false, threads: 2, indexRoots: [work.path], jobConcurrency: 2, logLevel: 'silent' },
    {},
  );
}

async function json<T>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

test('graceful stop: in-flight requests finish, a running job is checkpointed and resumed at the next start', async () => {
  mkdirSync(photos);
  for (const cls of ['coat', 'bag', 'dress', 'sneaker']) {
    for (let i = 0; i < 30; i++) copyFileSync(join(DEMO_DIR, cls, `${String(i).padStart(2, '0')}.png`), join(photos, `${cls}-${i}.png`));
  }
  const first = await startServer(config(), { logger: createLogger('silent') });
  await first.startup;
  const started = await json<JobView>(await fetch(`${first.url}/v1/jobs/index`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: photos }) }));
  let progress: JobView;
  do {
    progress = await json<JobView>(await fetch(`${first.url}/v1/jobs/${started.id}`));
  } while (progress.done === 0 && progress.state === 'running');
  assert.equal(progress.state, 'running', 'the job is still running when the server is stopped');

  // A request that has reached the server when the stop begins is still answered.
  const arrived = once(first.server, 'request');
  const inFlight = fetch(`${first.url}/v1/classify`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(demoImage('bag/00.png')) });
  await arrived;
  await first.close();
  const answer = await inFlight;
  assert.equal(answer.status, 200);
  assert.equal((await json<{ predictions: unknown[] }>(answer)).predictions.length, 5);

  const saved = JSON.parse(readFileSync(join(data, 'jobs.json'), 'utf8')) as { id: string; state: string }[];
  const job = saved.find((j) => j.id === started.id);
  assert.equal(job?.state, 'interrupted');
  // The journal lists the files finished so far (a header line, then one line per file).
  const finished = readFileSync(join(data, 'jobs', `${started.id}.jsonl`), 'utf8').trim().split('\n').length - 1;
  assert.ok(finished > 0 && finished < 120, `${finished} files journaled`);

  // The database was closed cleanly (its lock released): a new server opens it and resumes the job.
  const second = await startServer(config(), { logger: createLogger('silent') });
  try {
    await second.startup;
    await second.runtime.jobs.idle();
    const done = await json<JobView>(await fetch(`${second.url}/v1/jobs/${started.id}`));
    assert.equal(done.state, 'done');
    assert.equal(done.total, 120);
    assert.equal(done.done, 120, 'every file counted once over both runs');
    assert.equal(done.skipped + done.failed, 0);
    assert.equal(await second.runtime.gallery.size(), 120);
  } finally {
    await second.close();
  }
});
