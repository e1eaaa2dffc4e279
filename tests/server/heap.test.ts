import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { setHeapGrowing } from '../../server/heap.js';

/**
 * V8's "[HeapController] Limit: ... (factor)" lines of a child that keeps ~25 MB alive and runs
 * two full collections after setHeapGrowing(percent): the flag must take effect at run time.
 */
function limitFactors(percent: number): string[] {
  const script = `import('./server/heap.ts').then((m) => { m.setHeapGrowing(${percent}); const keep = []; for (let i = 0; i < 300000; i++) keep.push({ i, s: 'x' + i }); gc(); gc(); console.log(keep.length); });`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', '--trace-gc-verbose', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return [...r.stdout.matchAll(/\[HeapController\] Limit: .*\(([\d.]+)\)/g)].map((m) => m[1] ?? '');
}

test('setHeapGrowing sets V8\'s growing factor at run time; 0 leaves V8 its own', () => {
  const set = limitFactors(100);
  assert.ok(set.length >= 2, 'V8 printed its limits');
  assert.ok(set.slice(-2).every((f) => f === '2.0'), `factor with 100 %: ${set.join(', ')}`);
  const own = limitFactors(0);
  assert.ok(own.length >= 2 && own.slice(-2).every((f) => f !== '2.0'), `V8's own factor: ${own.join(', ')}`);
  assert.throws(() => setHeapGrowing(-1), /'heapGrowingPercent' must be an integer in 0\.\.1000, got -1/);
  assert.throws(() => setHeapGrowing(1.5), /got 1\.5/);
});
