/** The worker-thread session (model/worker-session.ts): same results, a free event loop, typed errors, clean close. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ModelError, ModelLoadError } from '../../model/errors.js';
import { createSession } from '../../model/session.js';
import type { ModelSession } from '../../model/session.js';
import { mulberry32 } from '../../training/network.js';
import { buildTinyModel, type TinyModel } from './tiny-model.js';

const CHW = 3 * 32 * 32;

function randomBatch(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: n * CHW }, () => rand() * 4 - 2);
}

describe('createSession({ worker: true })', () => {
  let model: TinyModel;
  let local: ModelSession;
  let remote: ModelSession;

  before(async () => {
    model = buildTinyModel();
    [local, remote] = await Promise.all([
      createSession(model.path, { device: 'cpu', threads: 1 }),
      createSession(model.path, { device: 'cpu', threads: 1, worker: true }),
    ]);
  });
  after(async () => {
    await Promise.all([local.close(), remote.close()]);
    model.cleanup();
  });

  it('has the same contract and gives the same outputs as the in-thread session', async () => {
    assert.deepEqual(remote.contract, local.contract);
    assert.deepEqual(remote.inputShape, local.inputShape);
    assert.equal(remote.provider, 'cpu');
    const batch = randomBatch(7, 5);
    const [a, b] = await Promise.all([local.run(batch, 7), remote.run(batch, 7)]);
    assert.equal(b.n, 7);
    assert.deepEqual(Array.from(b.logits), Array.from(a.logits));
    assert.deepEqual(Array.from(b.embedding), Array.from(a.embedding));
  });

  it('spinning off (the server default) changes nothing but how idle pool threads wait', async () => {
    const quiet = await createSession(model.path, { device: 'cpu', threads: 2, spin: false, worker: true });
    const spinning = await createSession(model.path, { device: 'cpu', threads: 2, spin: true });
    try {
      const batch = randomBatch(5, 9);
      const [a, b] = await Promise.all([quiet.run(batch, 5), spinning.run(batch, 5)]);
      for (let i = 0; i < a.logits.length; i++) assert.ok(Math.abs((a.logits[i] as number) - (b.logits[i] as number)) < 1e-5);
    } finally {
      await Promise.all([quiet.close(), spinning.close()]);
    }
  });

  it('copies the input: the caller may overwrite its buffer while the run is in flight', async () => {
    const batch = randomBatch(3, 9);
    const want = await local.run(batch, 3);
    const pending = remote.run(batch, 3);
    batch.fill(0);
    assert.deepEqual(Array.from((await pending).logits), Array.from(want.logits));
  });

  it('reuses its input slots without mixing batches: same-size runs in a row and at once each get their own result', async () => {
    const batches = [31, 32, 33, 34, 35].map((seed) => randomBatch(4, seed));
    const want = await Promise.all(batches.map((b) => local.run(b, 4)));
    for (const [i, b] of batches.entries()) assert.deepEqual(Array.from((await remote.run(b, 4)).logits), Array.from(want[i]!.logits), `run ${i} in a row`);
    const got = await Promise.all(batches.map((b) => remote.run(b, 4)));
    got.forEach((g, i) => assert.deepEqual(Array.from(g.logits), Array.from(want[i]!.logits), `run ${i} at once`));
  });

  it('grows its shared input slots with the batch size: smaller and larger batches, in a row and at once, keep their own results', async () => {
    // A fresh session, so that its slots start small and must grow (the shared one has seen 7 crops).
    const fresh = await createSession(model.path, { device: 'cpu', threads: 1, worker: true });
    try {
      const sizes = [2, 5, 1, 5, 3, 6, 2];
      const batches = sizes.map((n, i) => randomBatch(n, 60 + i));
      const want = await Promise.all(batches.map((b, i) => local.run(b, sizes[i]!)));
      for (const [i, b] of batches.entries()) {
        const got = await fresh.run(b, sizes[i]!);
        assert.equal(got.logits.length, want[i]!.logits.length, `run ${i} (${sizes[i]} crops) in a row`);
        assert.deepEqual(Array.from(got.logits), Array.from(want[i]!.logits), `run ${i} (${sizes[i]} crops) in a row`);
      }
      const together = await Promise.all(batches.map((b, i) => fresh.run(b, sizes[i]!)));
      together.forEach((g, i) => assert.deepEqual(Array.from(g.embedding), Array.from(want[i]!.embedding), `run ${i} (${sizes[i]} crops) at once`));
    } finally {
      await fresh.close();
    }
  });

  it('answers concurrent runs each with its own result', async () => {
    const batches = [1, 2, 3, 4].map((n) => randomBatch(n, 20 + n));
    const want = await Promise.all(batches.map((b, i) => local.run(b, i + 1)));
    const got = await Promise.all(batches.map((b, i) => remote.run(b, i + 1)));
    got.forEach((g, i) => assert.deepEqual(Array.from(g.logits), Array.from(want[i]!.logits), `run ${i}`));
  });

  it('leaves the event loop free during a run (the in-thread session holds it)', async () => {
    const ticksDuring = async (s: ModelSession): Promise<number> => {
      let ticks = 0;
      let running = true;
      const tick = (): void => {
        if (!running) return;
        ticks++;
        setImmediate(tick);
      };
      const batch = randomBatch(64, 3);
      setImmediate(tick);
      await s.run(batch, 64);
      running = false;
      return ticks;
    };
    // In-thread, onnxruntime-node computes synchronously after at most one turn of the loop.
    const inThread = await ticksDuring(local);
    const inWorker = await ticksDuring(remote);
    console.log(`ticks in thread ${inThread}, in worker ${inWorker}`);
    assert.ok(inThread <= 1, `in-thread run let the loop turn ${inThread} times`);
    assert.ok(inWorker > 1, `the main thread turned ${inWorker} times while the worker ran`);
  });

  it('rejects bad arguments in the main thread and reports load failures with their type', async () => {
    await assert.rejects(remote.run(new Float32Array(10), 1), /'batch' holds 10 floats/);
    await assert.rejects(remote.run(new Float32Array(CHW), 0), /'n' must be a positive integer/);
    const broken = join(model.dir, 'broken.onnx');
    writeFileSync(broken, 'not an onnx file');
    await assert.rejects(createSession(broken, { device: 'cpu', worker: true }), (e: unknown) => e instanceof ModelError && e.kind !== 'internal');
  });

  it('after close, runs are refused', async () => {
    const s = await createSession(model.path, { device: 'cpu', threads: 1, worker: true });
    await s.close();
    await s.close();
    await assert.rejects(s.run(randomBatch(1, 1), 1), ModelLoadError);
  });
});
