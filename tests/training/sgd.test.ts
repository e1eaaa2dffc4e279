/**
 * The paper's update rule against steps worked out by hand:
 *   v ← 0.9·v − 0.0005·ε·w − ε·g,   w ← w + v,   g = mean of the workers' gradient slots.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PAPER_SGD, sgdStep } from '../../training/sgd.js';

/** float32 storage rounds every value: compare to the hand result within a few float32 ulps. */
function close(actual: ArrayLike<number>, expected: readonly number[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    assert.ok(Math.abs(a - e) <= 1e-6 * Math.max(1, Math.abs(e)), `${what}[${i}] = ${a}, expected ${e}`);
  }
}

describe('sgdStep', () => {
  it('uses the paper constants', () => {
    assert.deepEqual({ ...PAPER_SGD }, { momentum: 0.9, weightDecay: 0.0005 });
    assert.ok(Object.isFrozen(PAPER_SGD));
  });

  it('one slot: first step from zero momentum, then a momentum step', () => {
    const w = Float32Array.of(1, -2, 0.5);
    const v = new Float32Array(3);
    // ε = 0.1: v = −0.00005·w − 0.1·g
    sgdStep(w, v, [Float32Array.of(2, 0, -1)], 0.1, PAPER_SGD);
    close(v, [-0.20005, 0.0001, 0.099975], 'v after step 1');
    close(w, [0.79995, -1.9999, 0.599975], 'w after step 1');
    // g = 0: only momentum and decay act. v = 0.9·v − 0.00005·w
    sgdStep(w, v, [new Float32Array(3)], 0.1, PAPER_SGD);
    close(v, [-0.1800849975, 0.000189995, 0.0899475012], 'v after step 2');
    close(w, [0.6198650025, -1.999710005, 0.6899225012], 'w after step 2');
  });

  it('two slots: the gradient is the mean of the slots', () => {
    const w = Float32Array.of(1, 1);
    const v = Float32Array.of(0.5, -0.5);
    // g = (4 + 0) / 2 = 2 and (−1 + 3) / 2 = 1; ε = 0.01, decay term 0.000005·w
    sgdStep(w, v, [Float32Array.of(4, -1), Float32Array.of(0, 3)], 0.01, PAPER_SGD);
    close(v, [0.45 - 0.000005 - 0.02, -0.45 - 0.000005 - 0.01], 'v');
    close(w, [1 + 0.429995, 1 - 0.460005], 'w');
  });

  it('three slots take the general path and also average', () => {
    const w = Float32Array.of(2);
    const v = Float32Array.of(0);
    sgdStep(w, v, [Float32Array.of(3), Float32Array.of(6), Float32Array.of(-3)], 0.1, PAPER_SGD);
    // g = 2; v = −0.00005·2 − 0.2
    close(v, [-0.2001], 'v');
    close(w, [1.7999], 'w');
  });

  it('two slots give the same step as one slot holding their mean', () => {
    const n = 257;
    const a = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: n }, (_, i) => Math.cos(3 * i));
    const mean = a.map((x, i) => (x + (b[i] as number)) / 2);
    const w1 = Float32Array.from({ length: n }, (_, i) => (i % 7) - 3);
    const v1 = Float32Array.from({ length: n }, (_, i) => (i % 5) / 10);
    const w2 = w1.slice();
    const v2 = v1.slice();
    sgdStep(w1, v1, [a, b], 0.05, PAPER_SGD);
    sgdStep(w2, v2, [mean], 0.05, PAPER_SGD);
    close(w1, Array.from(w2), 'w');
    close(v1, Array.from(v2), 'v');
  });

  it('updates only [start, end), so workers can split one array', () => {
    const w = Float32Array.of(1, 1, 1, 1, 1);
    const v = new Float32Array(5);
    const g = [Float32Array.of(1, 1, 1, 1, 1), Float32Array.of(1, 1, 1, 1, 1)];
    sgdStep(w, v, g, 0.1, PAPER_SGD, 1, 3);
    close(v, [0, -0.10005, -0.10005, 0, 0], 'v');
    close(w, [1, 0.89995, 0.89995, 1, 1], 'w');
    // Two disjoint ranges give the same result as one pass over everything.
    const wa = Float32Array.of(3, -1, 2, 0.25);
    const va = Float32Array.of(0.1, 0.2, -0.3, 0);
    const ga = [Float32Array.of(1, 2, 3, 4), Float32Array.of(-4, 3, -2, 1)];
    const wb = wa.slice();
    const vb = va.slice();
    sgdStep(wa, va, ga, 0.02, PAPER_SGD);
    sgdStep(wb, vb, ga, 0.02, PAPER_SGD, 0, 2);
    sgdStep(wb, vb, ga, 0.02, PAPER_SGD, 2, 4);
    assert.deepEqual(wb, wa);
    assert.deepEqual(vb, va);
  });

  it('honours a custom momentum and decay', () => {
    const w = Float32Array.of(10);
    const v = Float32Array.of(1);
    sgdStep(w, v, [Float32Array.of(0.5)], 0.2, { momentum: 0.5, weightDecay: 0.01 });
    // v = 0.5·1 − 0.01·0.2·10 − 0.2·0.5 = 0.5 − 0.02 − 0.1
    close(v, [0.38], 'v');
    close(w, [10.38], 'w');
  });
});
