import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher } from '../../server/batcher.js';
import type { BatchRunFn } from '../../server/batcher.js';
import { HttpError } from '../../server/errors.js';

const ITEM = 2;

/** A fake model: output 0 = sum of the item's two inputs, output 1 = the item's row in its batch. Records batches. */
function fakeRun(): { run: BatchRunFn; batches: { n: number; first: number; input: Float32Array }[]; gate: { hold: boolean; release(): void } } {
  const batches: { n: number; first: number; input: Float32Array }[] = [];
  let waiters: (() => void)[] = [];
  const gate = {
    hold: false,
    release() {
      gate.hold = false;
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    },
  };
  const run: BatchRunFn = async (input, n) => {
    batches.push({ n, first: input[0] ?? NaN, input });
    if (gate.hold) await new Promise<void>((r) => waiters.push(r));
    const sums = new Float32Array(n);
    const rows = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      sums[i] = (input[i * ITEM] ?? 0) + (input[i * ITEM + 1] ?? 0);
      rows[i] = i;
    }
    return [sums, rows];
  };
  return { run, batches, gate };
}

/** n items whose two inputs are (base + i, 1000): the expected sum identifies the item. */
function items(base: number, n: number): Float32Array {
  const a = new Float32Array(n * ITEM);
  for (let i = 0; i < n; i++) {
    a[i * ITEM] = base + i;
    a[i * ITEM + 1] = 1000;
  }
  return a;
}

function make(run: BatchRunFn, over: Partial<ConstructorParameters<typeof Batcher>[0]> = {}): Batcher {
  return new Batcher({ itemSize: ITEM, outputSizes: [1, 1], run, maxBatch: 32, maxDelayMs: 5, maxQueue: 1000, timeoutMs: 60_000, ...over });
}

test('concurrent requests are merged into full batches and each gets its own results back', async () => {
  const f = fakeRun();
  // A generous delay: the five submits are synchronous, but a starved CI process can take more than
  // a few ms between them, and a request older than the delay is (rightly) dispatched at once.
  const b = make(f.run, { maxDelayMs: 1000 });
  const reqs = [0, 100, 200, 300, 400].map((base) => b.submit(items(base, 10), 10));
  const outs = await Promise.all(reqs);
  assert.deepEqual(
    f.batches.map((x) => x.n),
    [32, 18],
  );
  outs.forEach(([sums], r) => {
    assert.deepEqual(Array.from(sums as Float32Array), Array.from({ length: 10 }, (_, i) => r * 100 + i + 1000));
  });
  // Request 3 (items 30..39) was split: 2 items in the first batch (rows 30, 31), 8 in the second (rows 0..7).
  assert.deepEqual(Array.from((outs[3] as Float32Array[])[1] as Float32Array), [30, 31, 0, 1, 2, 3, 4, 5, 6, 7]);
});

test('a lone request runs after at most the delay, in a batch of its own size', async () => {
  const f = fakeRun();
  const b = make(f.run, { maxDelayMs: 1 });
  const [sums] = await b.submit(items(7, 3), 3);
  assert.deepEqual(Array.from(sums as Float32Array), [1007, 1008, 1009]);
  assert.deepEqual(
    f.batches.map((x) => x.n),
    [3],
  );
});

test('interactive items are taken before background ones', async () => {
  const f = fakeRun();
  f.gate.hold = true;
  const b = make(f.run, { maxBatch: 16, maxDelayMs: 0 });
  const busy = b.submit(items(9000, 16), 16);
  await new Promise((r) => setImmediate(r));
  const bg = b.submit(items(5000, 30), 30, 'background');
  const fg = b.submit(items(1, 10), 10, 'interactive');
  assert.equal(b.depth('background'), 30);
  f.gate.release();
  await Promise.all([busy, bg, fg]);
  assert.equal(f.batches[1]?.first, 1, 'the batch after the busy one starts with the interactive request');
  assert.deepEqual(
    f.batches.map((x) => x.n),
    [16, 16, 16, 8],
  );
});

test('a full queue answers 503 overloaded with Retry-After; running work still completes', async () => {
  const f = fakeRun();
  f.gate.hold = true;
  const b = make(f.run, { maxBatch: 10, maxDelayMs: 0, maxQueue: 20 });
  const running = b.submit(items(0, 10), 10);
  await new Promise((r) => setImmediate(r));
  const queued = [b.submit(items(10, 10), 10), b.submit(items(20, 10), 10)];
  await assert.rejects(b.submit(items(30, 10), 10), (err: unknown) => {
    assert.ok(err instanceof HttpError);
    assert.equal(err.status, 503);
    assert.equal(err.code, 'overloaded');
    assert.match(err.headers['Retry-After'] ?? '', /^[1-9]\d*$/);
    return true;
  });
  assert.equal(b.depth(), 20);
  f.gate.release();
  await Promise.all([running, ...queued]);
  assert.equal(b.depth(), 0);
});

test('a request that cannot start before its deadline gets 503 timeout and is dropped from the queue', async () => {
  const f = fakeRun();
  f.gate.hold = true;
  const b = make(f.run, { maxBatch: 4, maxDelayMs: 0, timeoutMs: 30 });
  const first = b.submit(items(0, 4), 4).then(
    () => undefined,
    (err: unknown) => err,
  );
  await new Promise((r) => setImmediate(r));
  const late = b.submit(items(100, 4), 4);
  await assert.rejects(late, (err: unknown) => err instanceof HttpError && err.status === 503 && err.code === 'timeout');
  assert.equal(b.depth(), 0);
  f.gate.release();
  const firstErr = await first;
  assert.ok(firstErr instanceof HttpError && firstErr.code === 'timeout', 'the running request hit its deadline too');
  const again = await b.submit(items(9, 1), 1);
  assert.equal((again[0] as Float32Array)[0], 1009);
  assert.deepEqual(
    f.batches.map((x) => x.n),
    [4, 1],
    'the expired request never ran',
  );
});

test('input buffers are reused per batch size', async () => {
  const f = fakeRun();
  const b = make(f.run, { maxBatch: 8, maxDelayMs: 0 });
  await b.submit(items(0, 8), 8);
  await b.submit(items(0, 8), 8);
  await b.submit(items(0, 3), 3);
  await b.submit(items(0, 3), 3);
  assert.equal(f.batches[0]?.input, f.batches[1]?.input);
  assert.equal(f.batches[2]?.input, f.batches[3]?.input);
  assert.notEqual(f.batches[0]?.input, f.batches[2]?.input);
});

test('a failing run rejects the requests of that batch only', async () => {
  let calls = 0;
  const f = fakeRun();
  const b = make(
    async (input, n) => {
      calls++;
      if (calls === 1) throw new Error('boom');
      return f.run(input, n);
    },
    { maxBatch: 4, maxDelayMs: 0 },
  );
  await assert.rejects(b.submit(items(0, 4), 4), /boom/);
  const [sums] = await b.submit(items(0, 2), 2);
  assert.deepEqual(Array.from(sums as Float32Array), [1000, 1001]);
});

test('close fails queued work with shutting_down and refuses new work', async () => {
  const f = fakeRun();
  f.gate.hold = true;
  const b = make(f.run, { maxBatch: 4, maxDelayMs: 0 });
  const running = b.submit(items(0, 4), 4);
  await new Promise((r) => setImmediate(r));
  const queued = b.submit(items(0, 4), 4);
  b.close();
  await assert.rejects(queued, (err: unknown) => err instanceof HttpError && err.code === 'shutting_down');
  await assert.rejects(b.submit(items(0, 1), 1), (err: unknown) => err instanceof HttpError && err.code === 'shutting_down');
  f.gate.release();
  await running;
  await b.idle();
});
