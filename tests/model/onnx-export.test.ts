import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Preset } from '../../model/architecture.js';
import { parameterCount, smallPreset } from '../../model/architecture.js';
import { CONTRACT_KEY, ContractError } from '../../model/contract.js';
import type { ExportContract } from '../../model/onnx/index.js';
import { exportOnnx, float16BitsToFloat32, float32ToFloat16Bits, fromFloat16Array, inspectOnnx, OnnxError, readContract, readContractSync, readHeader, toFloat16Array } from '../../model/onnx/index.js';
import { hwioToOihw, nhwcRowsToNchw } from '../../model/onnx/layout.js';
import { decodeModel, encodeModel, floatTensor, modelProto, node, toNumber, valueInfo, DataType } from '../../model/onnx/proto.js';
import { initWeights, mulberry32 } from '../../training/network.js';

const tmp = mkdtempSync(join(tmpdir(), 'sightline-onnx-export-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function contractFor(p: Preset, labels = Array.from({ length: p.numClasses }, (_, i) => `label ${i}`)): ExportContract {
  return {
    name: 'export-test',
    modelVersion: '3',
    labels,
    preprocess: { inputSize: p.inputSize, resizeSize: p.resizeSize, channels: p.channels === 1 ? 'gray' : 'rgb', scale: 1 / 255, mean: p.channels === 1 ? [0.286] : [0.485, 0.456, 0.406], std: p.channels === 1 ? [0.353] : [0.229, 0.224, 0.225], background: [255, 255, 255] },
    metrics: { testAccuracy: 0.91 },
  };
}

const small = smallPreset();
const smallWeights = initWeights(small, 'he', 1);
const smallBytes = exportOnnx(small, smallWeights, contractFor(small));
const smallBytes16 = exportOnnx(small, smallWeights, contractFor(small), { fp16: true });

describe('float16 conversion', () => {
  it('converts known values with round-to-nearest-even', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.1, 0x2e66], [65504, 0x7bff],
      [65519.99, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001], [3 * 2 ** -25, 0x0002],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [2 ** -14 - 2 ** -25, 0x0400], [1e-10, 0x0000],
    ];
    for (const [x, h] of cases) assert.equal(float32ToFloat16Bits(x), h, `f16(${x}) = 0x${float32ToFloat16Bits(x).toString(16)}, want 0x${h.toString(16)}`);
    assert.ok(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN))));
  });

  it('round-trips every finite half exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      assert.equal(float32ToFloat16Bits(float16BitsToFloat32(h)), h, `half 0x${h.toString(16)}`);
    }
  });

  it('picks the nearest half (ties to even) for random floats', () => {
    const rand = mulberry32(42);
    const xs = new Float32Array(20000).map(() => (rand() - 0.5) * 2 ** Math.floor(rand() * 40 - 26));
    const hs = toFloat16Array(xs);
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i] ?? 0;
      const h = hs[i] ?? 0;
      const err = Math.abs(x - float16BitsToFloat32(h));
      for (const nb of [h - 1, h + 1]) {
        if ((nb & 0x7fff) >= 0x7c00 || (nb & 0x8000) !== (h & 0x8000) || nb < 0) continue;
        const nbErr = Math.abs(x - float16BitsToFloat32(nb));
        assert.ok(err < nbErr || (err === nbErr && (h & 1) === 0), `x=${x}: half 0x${h.toString(16)} is not nearest-even (neighbour 0x${nb.toString(16)})`);
      }
    }
    assert.deepEqual(Array.from(fromFloat16Array(toFloat16Array(new Float32Array([0.5, -3.25])))), [0.5, -3.25]);
  });
});

describe('layout conversion', () => {
  it('transposes HWIO kernels to OIHW', () => {
    // kh=1, kw=2, in=2, out=3: value encodes its HWIO index.
    const hwio = new Float32Array(12).map((_, i) => i);
    const oihw = hwioToOihw(hwio, 1, 2, 2, 3);
    // OIHW[o][i][0][x] = HWIO[0][x][i][o] = (x*2 + i)*3 + o
    for (let o = 0; o < 3; o++) for (let i = 0; i < 2; i++) for (let x = 0; x < 2; x++) assert.equal(oihw[(o * 2 + i) * 2 + x], (x * 2 + i) * 3 + o);
  });

  it('moves dense rows from NHWC to NCHW flattening order', () => {
    const [c, h, w, units] = [3, 2, 2, 2];
    const rows = new Float32Array(c * h * w * units).map((_, i) => Math.floor(i / units));
    const out = nhwcRowsToNchw(rows, c, h, w, units);
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) assert.equal(out[(ch * h * w + y * w + x) * units + 1], (y * w + x) * c + ch);
  });
});

describe('exportOnnx', () => {
  it('writes the contract graph: images [N,C,H,W] → logits [N,K], embedding [N,4096]', () => {
    const s = inspectOnnx(smallBytes);
    assert.equal(s.opset, 13);
    assert.equal(s.producer.split(' ')[0], 'sightline');
    assert.deepEqual(s.inputs.map((i) => [i.name, i.shape]), [['images', ['N', 1, 28, 28]]]);
    assert.deepEqual(s.outputs.map((o) => [o.name, o.shape]), [['logits', ['N', 10]], ['embedding', ['N', 4096]]]);
    assert.equal(s.parameters, parameterCount(small));
    assert.deepEqual(s.ops, { Conv: 5, Relu: 7, LRN: 2, MaxPool: 3, Flatten: 1, Gemm: 3 });
    assert.equal(s.modelVersion, 3);
    const lrn = decodeModel(smallBytes).graph?.node?.find((n) => n.opType === 'LRN');
    const attrs = Object.fromEntries((lrn?.attribute ?? []).map((a) => [a.name, a.type === 1 ? a.f : toNumber(a.i)]));
    assert.equal(attrs['size'], 5);
    assert.ok(Math.abs((attrs['alpha'] ?? 0) - 5e-4) < 1e-9, `LRN alpha ${attrs['alpha']} should be paper α·size = 5e-4`);
  });

  it('stores fp16 initializers behind Cast nodes at about half the size', () => {
    const s = inspectOnnx(smallBytes16);
    assert.deepEqual(s.initializerTypes, { FLOAT16: 16 });
    assert.equal(s.ops['Cast'], 16);
    assert.equal(s.parameters, parameterCount(small));
    const ratio = smallBytes16.length / smallBytes.length;
    assert.ok(ratio > 0.49 && ratio < 0.51, `fp16 file is ${ratio.toFixed(3)} of fp32`);
  });

  it('carries the full contract in metadata_props', async () => {
    const c = await readContract(smallBytes);
    assert.deepEqual(c.io, { input: 'images', logits: 'logits', embedding: 'embedding' });
    assert.equal(c.embeddingDim, 4096);
    assert.equal(c.preset, 'alexnet-small');
    assert.equal(c.labels[9], 'label 9');
    assert.deepEqual(c.metrics, { testAccuracy: 0.91 });
    assert.equal(c.preprocess.channels, 'gray');
    assert.equal(readHeader(smallBytes).metadata['sightline.preset'], 'alexnet-small');
  });

  it('rejects weights of the wrong shape and contracts that do not fit the preset', () => {
    const bad = new Map(smallWeights);
    const fc6 = smallWeights.get('fc6');
    assert.ok(fc6);
    bad.set('fc6', { ...fc6, wShape: [4096, 1024] });
    assert.throws(() => exportOnnx(small, bad, contractFor(small)), (e: unknown) => e instanceof OnnxError && e.code === 'onnx_invalid_weights' && /'fc6'.*\[1024, 4096\]/.test(e.message));
    assert.throws(() => exportOnnx(small, smallWeights, contractFor(small, ['a', 'b'])), (e: unknown) => e instanceof OnnxError && e.kind === 'invalid_argument' && /'labels' must have 10 entries/.test(e.message));
  });

});

describe('readContract', () => {
  it('reads the contract from a file path, skipping the graph', async () => {
    const file = join(tmp, 'small.onnx');
    writeFileSync(file, smallBytes);
    const c = await readContract(file);
    assert.equal(c.name, 'export-test');
    assert.deepEqual(c, readContractSync(smallBytes));
    const h = readHeader(file);
    assert.equal(h.irVersion, 7);
    assert.deepEqual(h.opsetImports, [{ domain: '', version: 13 }]);
    assert.ok(h.graphBytes > 0.99 * smallBytes.length, `graph is ${h.graphBytes} of ${smallBytes.length} bytes`);
    assert.ok(h.metadata[CONTRACT_KEY]?.startsWith('{'));
  });

  it('names the file when it is not ONNX or has no contract', async () => {
    await assert.rejects(readContract('tests/fixtures/images/dog.jpg'), (e: unknown) => e instanceof OnnxError && e.code === 'onnx_malformed' && e.message.includes('dog.jpg'));
    const bare = encodeModel(modelProto({ name: 'g', node: [node('Relu', ['x'], ['y'], 'r')], input: [valueInfo('x', DataType.FLOAT, [1])], output: [valueInfo('y', DataType.FLOAT, [1])], initializer: [floatTensor('unused', [1], new Float32Array(1))] }));
    const file = join(tmp, 'bare.onnx');
    writeFileSync(file, bare);
    await assert.rejects(readContract(file), (e: unknown) => e instanceof ContractError && e.message.includes('bare.onnx'));
  });
});
