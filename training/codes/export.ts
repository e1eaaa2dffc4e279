/**
 * The trained encoder → ONNX (opset 13): raw fc7 in, pre-sign code values out. The input
 * normalization the autoencoder was trained with is part of the graph, so a runtime feeds raw fc7:
 *
 *   embedding [N, D] → ÷ max(‖x‖₂, ε) → − mean → × scale → (Gemm → Relu)* → Gemm = code_logits [N, B]
 */
import { CODES_INPUT, CODES_KEY, CODES_OUTPUT, codesMetaSchema, type CodesMeta, attr, DataType, encodeModel, floatTensor, modelProto, node, valueInfo } from '../../model/index.js';
import type { LayerWeights, INodeProto, ITensorProto } from '../../model/index.js';

/** Below this norm an embedding is treated as all-zero instead of being blown up to unit length. */
export const NORM_EPSILON = 1e-6;

export interface Normalization {
  /** Per-dimension mean of the L2-normalized training embeddings. */
  mean: Float32Array;
  /** One scale for all dimensions: 1 / RMS of the centered values, so inputs have unit variance on average. */
  scale: number;
}

export interface EncoderWeights {
  norm: Normalization;
  /** Dense layers in order, tfjs layout ([in, out] kernels); ReLU after all but the last. */
  layers: LayerWeights[];
}

export function normalizationDescription(): string {
  return `x / max(||x||_2, ${NORM_EPSILON}) - mean, times scale (mean and scale of the training embeddings)`;
}

function checkLayers(w: EncoderWeights, dim: number, bits: number): void {
  let width = dim;
  w.layers.forEach((l, i) => {
    const [fin, fout] = l.wShape as [number, number];
    if (l.wShape.length !== 2 || fin !== width || l.w.length !== fin * fout || l.b.length !== fout) {
      throw new Error(`encoder layer ${i}: kernel [${l.wShape.join(', ')}] with ${l.w.length} values and ${l.b.length} biases does not follow width ${width}`);
    }
    width = fout;
  });
  if (width !== bits) throw new Error(`encoder ends with ${width} units, metadata says ${bits} bits`);
  if (w.norm.mean.length !== dim) throw new Error(`normalization mean has ${w.norm.mean.length} values, embeddingDim is ${dim}`);
}

/** Serialized ONNX model of the encoder; `meta` travels as metadata_props[`sightline.codes`]. */
export function exportCodesOnnx(weights: EncoderWeights, meta: CodesMeta): Uint8Array {
  const m = codesMetaSchema.parse(meta);
  checkLayers(weights, m.embeddingDim, m.bits);
  const inits: ITensorProto[] = [
    floatTensor('norm.epsilon', [], Float32Array.of(NORM_EPSILON)),
    floatTensor('norm.mean', [m.embeddingDim], weights.norm.mean),
    floatTensor('norm.scale', [], Float32Array.of(weights.norm.scale)),
  ];
  const nodes: INodeProto[] = [
    node('ReduceL2', [CODES_INPUT], ['norm.l2'], 'norm.l2', [attr.ints('axes', [1]), attr.int('keepdims', 1)]),
    node('Max', ['norm.l2', 'norm.epsilon'], ['norm.safe'], 'norm.safe'),
    node('Div', [CODES_INPUT, 'norm.safe'], ['norm.unit'], 'norm.unit'),
    node('Sub', ['norm.unit', 'norm.mean'], ['norm.centered'], 'norm.centered'),
    node('Mul', ['norm.centered', 'norm.scale'], ['norm.out'], 'norm.out'),
  ];
  let x = 'norm.out';
  weights.layers.forEach((l, i) => {
    const last = i === weights.layers.length - 1;
    const name = `enc${i + 1}`;
    inits.push(floatTensor(`${name}.weight`, l.wShape, l.w), floatTensor(`${name}.bias`, [l.b.length], l.b));
    const out = last ? CODES_OUTPUT : name;
    nodes.push(node('Gemm', [x, `${name}.weight`, `${name}.bias`], [out], name));
    x = out;
    if (!last) {
      nodes.push(node('Relu', [out], [`${name}.relu`], `${name}.relu`));
      x = `${name}.relu`;
    }
  });
  const graph = {
    name: 'sightline-codes',
    node: nodes,
    initializer: inits,
    input: [valueInfo(CODES_INPUT, DataType.FLOAT, ['N', m.embeddingDim])],
    output: [valueInfo(CODES_OUTPUT, DataType.FLOAT, ['N', m.bits])],
  };
  const doc = `Sightline binary codes: ${m.embeddingDim}-d fc7 (${m.cropPolicy}) → ${m.bits} bits (bit = code_logits > 0), for ${m.model.name} v${m.model.version}`;
  return encodeModel(
    modelProto(graph, {
      docString: doc,
      metadata: {
        [CODES_KEY]: JSON.stringify(m),
        'sightline.codes.bits': String(m.bits),
        'sightline.codes.model_sha256': m.modelHash,
        'sightline.codes.crop_policy': m.cropPolicy,
      },
    }),
  );
}
