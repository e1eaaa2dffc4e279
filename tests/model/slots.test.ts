/** Slots (model/slots.ts): the bound on images decoded at once. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Slots } from '../../model/slots.js';

/** A task that records how many tasks ran with it and finishes when `release` is called. */
function gate(): { promise: Promise<void>; release: () => void } {
  let release = (): void => {};
  const promise = new Promise<void>((r) => (release = r));
  return { promise, release };
}

describe('Slots', () => {
  it('runs at most `size` tasks at once, the others in arrival order', async () => {
    const slots = new Slots(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const gates = Array.from({ length: 5 }, gate);
    const done = gates.map((g, i) =>
      slots.run(async () => {
        started.push(i);
        peak = Math.max(peak, ++running);
        await g.promise;
        running--;
        return i;
      }),
    );
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [0, 1]);
    assert.equal(slots.queued, 3);
    for (const g of [gates[1], gates[0], gates[2], gates[3], gates[4]]) {
      g?.release();
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await Promise.all(done), [0, 1, 2, 3, 4]);
    assert.deepEqual(started, [0, 1, 2, 3, 4]);
    assert.equal(peak, 2);
    assert.equal(slots.queued, 0);
  });

  it('frees the slot of a task that fails', async () => {
    const slots = new Slots(1);
    await assert.rejects(slots.run(() => Promise.reject(new Error('decode failed'))), /decode failed/);
    assert.equal(await slots.run(() => Promise.resolve(7)), 7);
  });

  it('refuses a size that is not a positive integer', () => {
    assert.throws(() => new Slots(0), /size must be a positive integer, got 0/);
  });
});
