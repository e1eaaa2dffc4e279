/**
 * The LRN expansion (model/onnx/lrn.ts) against onnxruntime's own LRN kernel: same values on
 * random inputs for the paper's constants and for others (beta ≠ 0.75 takes the Pow path, an
 * opset-12 graph the attribute form of Unsqueeze/Squeeze, an opset-8 graph Mul and Add instead of
 * BatchNormalization for bias + alpha·mean), channels-last when the LRN reads a
 * dequantized tensor (an int8 graph) or a float Conv, and a model without LRN is left alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expandLrn } from '../../model/onnx/lrn.js';
import type { IAttributeProto, INodeProto, ITensorProto } from '../../model/onnx/proto.js';
import { attr, DataType, decodeModel, encodeModel, modelProto, node, valueInfo } from '../../model/onnx/proto.js';
import { mulberry32 } from '../../training/network.js';
import { relativeError, runOrt } from './onnx-checker.js';

const SHAPE = [2, 7, 5, 4];

function lrnModel(attrs: IAttributeProto[], opset: number): Uint8Array {
  const graph = {
    name: 'lrn',
    node: [node('LRN', ['x'], ['y'], 'norm', attrs)],
    input: [valueInfo('x', DataType.FLOAT, SHAPE)],
    output: [valueInfo('y', DataType.FLOAT, SHAPE)],
  };
  const m = modelProto(graph);
  m.opsetImport = [{ domain: '', version: opset }];
  return encodeModel(m);
}

/**
 * Builds a graph x → `nodes` → y (the last node the LRN), expands it, and asserts that the LRN runs
 * channels-last (one Transpose to NHWC before it, one back after) with onnxruntime's LRN values on `x`.
 */
async function assertChannelsLast(name: string, nodes: INodeProto[], initializer: ITensorProto[], x: Float32Array): Promise<void> {
  const graph = { name, node: nodes, initializer, input: [valueInfo('x', DataType.FLOAT, SHAPE)], output: [valueInfo('y', DataType.FLOAT, SHAPE)] };
  const src = encodeModel(modelProto(graph));
  const ex = expandLrn(src);
  assert.ok(ex);
  const expanded = decodeModel(ex.bytes).graph?.node ?? [];
  assert.deepEqual(expanded.filter((n) => n.opType === 'Transpose').map((n) => Array.from(n.attribute?.[0]?.ints ?? [], Number)), [[0, 2, 3, 1], [0, 3, 1, 2]]);
  const feeds = { x: { data: x, dims: SHAPE } };
  const [a, b] = await Promise.all([runOrt(src, feeds, ['y']), runOrt(ex.bytes, feeds, ['y'])]);
  assert.ok(relativeError(b['y'] ?? [], a['y'] ?? []) < 1e-5);
}

const CASES: { label: string; attrs: IAttributeProto[]; opset: number }[] = [
  { label: 'paper constants (size 5, alpha 5e-4, beta 0.75, bias 2), opset 13', attrs: [attr.int('size', 5), attr.float('alpha', 5e-4), attr.float('beta', 0.75), attr.float('bias', 2)], opset: 13 },
  { label: 'size 3, alpha 0.3, beta 0.6, bias 1.5 (Pow), opset 13', attrs: [attr.int('size', 3), attr.float('alpha', 0.3), attr.float('beta', 0.6), attr.float('bias', 1.5)], opset: 13 },
  { label: 'ONNX defaults (alpha 1e-4, beta 0.75, bias 1), size 5, opset 12', attrs: [attr.int('size', 5)], opset: 12 },
  { label: 'paper constants, opset 8 (Mul and Add instead of BatchNormalization)', attrs: [attr.int('size', 5), attr.float('alpha', 5e-4), attr.float('beta', 0.75), attr.float('bias', 2)], opset: 8 },
];

describe('expandLrn', () => {
  for (const c of CASES) {
    it(`equals onnxruntime's LRN: ${c.label}`, async () => {
      const src = lrnModel(c.attrs, c.opset);
      const ex = expandLrn(src);
      assert.ok(ex, 'the LRN node was expanded');
      assert.equal(ex.expanded, 1);
      const ops = (decodeModel(ex.bytes).graph?.node ?? []).map((n) => n.opType);
      assert.ok(!ops.includes('LRN') && ops.includes('AveragePool'), ops.join(' '));
      // bias + alpha·mean is one BatchNormalization from opset 9 on, a Mul and an Add before.
      assert.equal(ops.includes('BatchNormalization'), c.opset >= 9, ops.join(' '));
      // It reads a graph input, neither a Conv nor a DequantizeLinear: channels-first, no Transposes.
      assert.ok(!ops.includes('Transpose'), ops.join(' '));
      const rand = mulberry32(7);
      // Large values, so the window sum of squares (not only the bias) shapes the denominator.
      const x = new Float32Array(SHAPE.reduce((a, b) => a * b, 1)).map(() => (rand() - 0.5) * 20);
      const feeds = { x: { data: x, dims: SHAPE } };
      const [a, b] = await Promise.all([runOrt(src, feeds, ['y']), runOrt(ex.bytes, feeds, ['y'])]);
      const err = relativeError(b['y'] ?? [], a['y'] ?? []);
      assert.ok(err < 1e-5, `relative error ${err}`);
    });
  }

  it('writes an LRN that reads a DequantizeLinear channels-last, with the same values', async () => {
    const lrn = [attr.int('size', 5), attr.float('alpha', 5e-4), attr.float('beta', 0.75), attr.float('bias', 2)];
    const scale = { name: 's', dims: [], dataType: DataType.FLOAT, rawData: new Uint8Array(Float32Array.of(0.05).buffer) };
    const zp = { name: 'z', dims: [], dataType: DataType.UINT8, rawData: Uint8Array.of(0) };
    const nodes = [node('QuantizeLinear', ['x', 's', 'z'], ['q'], 'q'), node('DequantizeLinear', ['q', 's', 'z'], ['dq'], 'dq'), node('Relu', ['dq'], ['r'], 'relu'), node('LRN', ['r'], ['y'], 'norm', lrn)];
    const rand = mulberry32(9);
    const x = new Float32Array(SHAPE.reduce((a, b) => a * b, 1)).map(() => rand() * 12);
    await assertChannelsLast('qdq-lrn', nodes, [scale, zp], x);
  });

  it('writes an LRN that reads a float Conv (through a Relu) channels-last, with the same values', async () => {
    const lrn = [attr.int('size', 5), attr.float('alpha', 5e-4), attr.float('beta', 0.75), attr.float('bias', 2)];
    const rand = mulberry32(11);
    const c = SHAPE[1] ?? 0;
    const w = { name: 'w', dims: [c, c, 1, 1], dataType: DataType.FLOAT, rawData: new Uint8Array(new Float32Array(c * c).map(() => rand() - 0.3).buffer) };
    const nodes = [node('Conv', ['x', 'w'], ['c'], 'conv'), node('Relu', ['c'], ['r'], 'relu'), node('LRN', ['r'], ['y'], 'norm', lrn)];
    const x = new Float32Array(SHAPE.reduce((a, b) => a * b, 1)).map(() => (rand() - 0.5) * 20);
    await assertChannelsLast('conv-lrn', nodes, [w], x);
  });

  it('returns undefined for a graph with no LRN, and for one whose weights live in external files', () => {
    const graph = { name: 'relu', node: [node('Relu', ['x'], ['y'], 'relu')], input: [valueInfo('x', DataType.FLOAT, SHAPE)], output: [valueInfo('y', DataType.FLOAT, SHAPE)] };
    assert.equal(expandLrn(encodeModel(modelProto(graph))), undefined);
    const external = decodeModel(lrnModel([attr.int('size', 5)], 13));
    if (!external.graph) throw new Error('no graph');
    external.graph.initializer = [{ name: 'w', dims: [1], dataType: DataType.FLOAT, dataLocation: 1, externalData: [{ key: 'location', value: 'w.bin' }] }];
    assert.equal(expandLrn(encodeModel(external)), undefined);
  });
});
