/**
 * The reference ONNX checker (onnx.checker.check_model, full_check) on what we write: exported
 * models in fp32 and fp16, and imported third-party graphs. Needs python3-onnx; without it the
 * cases skip and name the package.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { smallPreset } from '../../model/architecture.js';
import { exportOnnx, importOnnx } from '../../model/onnx/index.js';
import type { ExportContract } from '../../model/onnx/index.js';
import { DataType, encodeModel, modelProto, node, valueInfo } from '../../model/onnx/proto.js';
import { calibrate, rangesOf } from '../../model/onnx/quantize-calibrate.js';
import { planQuantization, quantizeModel } from '../../model/onnx/quantize.js';
import { gaussianFill, initWeights, mulberry32 } from '../../training/network.js';
import { caffeLike, torchvisionLike } from '../model/import-graphs.js';
import { checkerMissing, checkModels } from '../model/onnx-checker.js';
import { buildTinyModel, groupedTinyPreset, TINY_LABELS, tinyPreprocess, tinyPreset } from '../model/tiny-model.js';

const skip = checkerMissing();
const labels = ['cat', 'dog', 'eagle', 'horse', 'person'];

describe('onnx.checker full_check', () => {
  it('passes exported models (fp32 and fp16), and the checker does reject a broken graph', { skip }, () => {
    const small = smallPreset();
    const weights = initWeights(small, 'he', 1);
    const contract: ExportContract = {
      name: 'export-test',
      modelVersion: '3',
      labels: Array.from({ length: small.numClasses }, (_, i) => `label ${i}`),
      preprocess: { inputSize: small.inputSize, resizeSize: small.resizeSize, channels: 'gray', scale: 1 / 255, mean: [0.286], std: [0.353], background: [255, 255, 255] },
      metrics: { testAccuracy: 0.91 },
    };
    assert.equal(small.channels, 1);
    // Dangling input: 'nowhere' is neither a graph input, an initializer nor a node output.
    const broken = encodeModel(modelProto({ name: 'g', node: [node('Relu', ['nowhere'], ['y'], 'r')], input: [valueInfo('x', DataType.FLOAT, [1])], output: [valueInfo('y', DataType.FLOAT, [1])] }));
    const [r32, r16, bad] = checkModels([exportOnnx(small, weights, contract), exportOnnx(small, weights, contract, { fp16: true }), broken]);
    assert.ok(r32?.ok, `fp32: ${r32?.output}`);
    assert.ok(r16?.ok, `fp16: ${r16?.output}`);
    assert.equal(bad?.ok, false, 'the checker accepted a graph with a dangling input');
    assert.match(bad?.output ?? '', /nowhere/);
  });

  it('passes a grouped (two-tower) export', { skip }, () => {
    const weights = initWeights(groupedTinyPreset, 'he', 5);
    const contract: ExportContract = {
      name: 'grouped',
      modelVersion: '1',
      labels: Array.from({ length: groupedTinyPreset.numClasses }, (_, i) => `label ${i}`),
      preprocess: tinyPreprocess,
      metrics: {},
    };
    const [r] = checkModels([exportOnnx(groupedTinyPreset, weights, contract)]);
    assert.ok(r?.ok, r?.output);
  });

  it('passes imported torchvision-like and Caffe-like graphs', { skip }, () => {
    const results = checkModels([importOnnx(torchvisionLike().bytes, { preset: 'torchvision', labels }), importOnnx(caffeLike().bytes, { preset: 'caffe', labels })]);
    assert.equal(results.length, 2);
    for (const r of results) assert.ok(r.ok, r.output);
  });

  it('passes an int8 QDQ model made by the quantizer (fp32 and fp16 sources)', { skip }, async () => {
    const tiny = buildTinyModel();
    try {
      const src = readFileSync(tiny.path);
      const plan = planQuantization(src);
      const data = gaussianFill(new Float32Array(4 * 3 * 32 * 32), 1, mulberry32(3));
      const stats = await calibrate(src, plan, { input: 'images', shape: [3, 32, 32], batches: () => [{ data, n: 4 }] });
      const calibration = { set: 'random', images: 4, crops: 1, method: 'percentile' };
      const fp16 = exportOnnx(tinyPreset, tiny.weights, { name: 'tiny16', modelVersion: '1', labels: TINY_LABELS, preprocess: tinyPreprocess }, { fp16: true });
      const q32 = quantizeModel(src, plan, { ranges: rangesOf(stats, 'percentile'), calibration }).bytes;
      const q16 = quantizeModel(fp16, planQuantization(fp16), { ranges: rangesOf(stats, 'minmax'), calibration }).bytes;
      for (const r of checkModels([q32, q16])) assert.ok(r.ok, r.output);
    } finally {
      tiny.cleanup();
    }
  });
});
