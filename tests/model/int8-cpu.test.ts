/**
 * The int8 saturation warning (model/int8-cpu.ts): which contracts on which CPUs get it, and the
 * flags read from a cpuinfo file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseContract, type ModelContract } from '../../model/contract.js';
import { int8SaturationWarning, readCpuFlags } from '../../model/int8-cpu.js';

const base = {
  version: 1, name: 'm', modelVersion: '1', preset: 'alexnet-small', labels: ['a', 'b'],
  preprocess: { inputSize: 28, resizeSize: 32, channels: 'gray', scale: 255, mean: [0.5], std: [0.5], background: [0, 0, 0] },
  io: { input: 'images', logits: 'logits', embedding: 'embedding' }, embeddingDim: 8, source: 'test',
};
const quantization = {
  format: 'qdq-int8', weights: 'int8', activations: 'uint8', quantizedNodes: 8,
  calibration: { set: 's', images: 1, crops: 10, method: 'minmax' }, from: { name: 'm', modelVersion: '1' },
};
const contract = (extra: object): ModelContract => parseContract(JSON.stringify({ ...base, ...extra }), 'test');
const avx2 = new Set(['sse4_2', 'avx', 'avx2', 'fma']);
const vnni = new Set([...avx2, 'avx512f', 'avx512_vnni']);

describe('int8 saturation warning', () => {
  it('warns for 8-bit weights on an AVX2 CPU without VNNI, naming the model and the way out', () => {
    const w = int8SaturationWarning(contract({ quantization: { ...quantization, weightBits: 8 } }), avx2);
    assert.match(w ?? '', /^model 'm' has 8-bit int8 weights and this CPU has no VNNI .*re-quantize .*sightline quantize/);
  });

  it('treats an int8 contract without weightBits (made before the field) as 8-bit', () => {
    const c = contract({ quantization });
    assert.equal(c.quantization?.weightBits, 8);
    assert.notEqual(int8SaturationWarning(c, avx2), undefined);
  });

  it('stays silent for 7-bit weights, float models, VNNI CPUs and unknown CPUs', () => {
    assert.equal(int8SaturationWarning(contract({ quantization: { ...quantization, weightBits: 7 } }), avx2), undefined);
    assert.equal(int8SaturationWarning(contract({}), avx2), undefined);
    assert.equal(int8SaturationWarning(contract({ quantization }), vnni), undefined);
    assert.equal(int8SaturationWarning(contract({ quantization }), new Set([...avx2, 'avx_vnni'])), undefined);
    assert.equal(int8SaturationWarning(contract({ quantization }), undefined), undefined);
  });
});

describe('readCpuFlags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cpuinfo-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the first processor\'s flags; undefined without a flags line or a file', () => {
    const p = join(dir, 'cpuinfo');
    writeFileSync(p, 'processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu avx512_vnni\n');
    assert.deepEqual([...(readCpuFlags(p) ?? [])], ['fpu', 'sse2', 'avx2', 'fma']);
    writeFileSync(p, 'processor\t: 0\nFeatures\t: fp asimd\n');
    assert.equal(readCpuFlags(p), undefined);
    assert.equal(readCpuFlags(join(dir, 'missing')), undefined);
  });
});
