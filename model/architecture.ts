/**
 * AlexNet layer hyper-parameters: the single source of truth for both the tfjs model (training)
 * and the ONNX graph (export). Both builders walk `layers` in order.
 *
 * Shape of the network (Krizhevsky, Sutskever & Hinton 2012): five convolutions, then three fully
 * connected layers; ReLU after every hidden layer; local response normalization after conv1 and
 * conv2; overlapping 3×3 stride-2 max-pooling after conv1, conv2 and conv5; dropout 0.5 on fc6 and
 * fc7; fc8 is N-way and emits logits (softmax is applied by the runtime, not baked into the graph).
 *
 * The paper splits conv2, conv4 and conv5 across two GPUs: each of those layers is a grouped
 * convolution (groups = 2), every filter seeing only its own tower's half of the input channels.
 * `alexnet` keeps that grouping (≈ 61M parameters, ≈ 0.72 GMAC per crop, as the paper and the ONNX
 * zoo's BVLC AlexNet); `alexnet-dense` is the single-tower variant (≈ 62M, ≈ 1.14 GMAC) where every
 * convolution sees all input channels. `alexnet-small` (the bundled model) stays single-tower.
 */

/** The paper's LRN constants: k=2, n=5 (window, channels), alpha=1e-4, beta=0.75. */
export const PAPER_LRN = Object.freeze({ size: 5, bias: 2, alpha: 1e-4, beta: 0.75 });

export interface ConvLayer {
  readonly kind: 'conv';
  readonly name: string;
  readonly filters: number;
  readonly kernel: number;
  readonly stride: number;
  /** Symmetric zero padding on each side. */
  readonly pad: number;
  /** Initial bias value under the paper's init (1 for conv2, conv4, conv5; 0 otherwise). */
  readonly biasInit: number;
  readonly lrn: boolean;
  readonly pool: boolean;
  /**
   * Channel groups (the paper's towers): input and output channels are split into `groups` equal
   * parts and part g of the output sees only part g of the input. Absent = 1 (dense).
   */
  readonly groups?: number;
}

export interface DenseLayer {
  readonly kind: 'dense';
  readonly name: string;
  readonly units: number;
  readonly biasInit: number;
  /** ReLU + dropout on hidden layers; the last layer emits logits. */
  readonly hidden: boolean;
}

export type Layer = ConvLayer | DenseLayer;

export interface Preset {
  readonly name: string;
  /** Channels of the input tensor (3 for RGB, 1 for grayscale). */
  readonly channels: number;
  /** Crop size fed to the network (H = W). */
  readonly inputSize: number;
  /** Shorter side is resized to this before cropping; inputSize/resizeSize = 224/256 as in the paper. */
  readonly resizeSize: number;
  readonly numClasses: number;
  readonly layers: readonly Layer[];
  /** Pooling window and stride (overlapping pooling: window 3 > stride 2). */
  readonly pool: { readonly size: number; readonly stride: number };
  readonly dropout: number;
  readonly lrn: typeof PAPER_LRN;
}

export const EMBEDDING_LAYER = 'fc7';
/** Width of fc7, the embedding layer, in every preset (index/ keeps its own default: it does not import model/). */
const EMBEDDING_DIM = 4096;

function conv(name: string, filters: number, kernel: number, stride: number, pad: number, biasInit: number, lrn: boolean, pool: boolean, groups = 1): ConvLayer {
  return groups === 1 ? { kind: 'conv', name, filters, kernel, stride, pad, biasInit, lrn, pool } : { kind: 'conv', name, filters, kernel, stride, pad, biasInit, lrn, pool, groups };
}

/** `towers` = 2 groups conv2, conv4 and conv5 as the paper's two GPUs did; conv3 and the fc layers see both towers. */
function alexnetLayers(widths: readonly [number, number, number, number, number], k1: number, s1: number, p1: number, k2: number, numClasses: number, towers = 1): Layer[] {
  const [w1, w2, w3, w4, w5] = widths;
  return [
    conv('conv1', w1, k1, s1, p1, 0, true, true),
    conv('conv2', w2, k2, 1, (k2 - 1) / 2, 1, true, true, towers),
    conv('conv3', w3, 3, 1, 1, 0, false, false),
    conv('conv4', w4, 3, 1, 1, 1, false, false, towers),
    conv('conv5', w5, 3, 1, 1, 1, false, true, towers),
    { kind: 'dense', name: 'fc6', units: 4096, biasInit: 1, hidden: true },
    { kind: 'dense', name: 'fc7', units: EMBEDDING_DIM, biasInit: 1, hidden: true },
    { kind: 'dense', name: 'fc8', units: numClasses, biasInit: 0, hidden: false },
  ];
}

/**
 * Full-size AlexNet: 3×224×224, conv1 96 11×11/4, 1000 classes. Two towers by default (the paper's
 * 60,965,224 parameters with 1000 classes); `dense` gives the single-tower `alexnet-dense` (62.4M).
 */
export function alexnetPreset(numClasses = 1000, opts: { dense?: boolean } = {}): Preset {
  const dense = opts.dense === true;
  return Object.freeze({
    name: dense ? 'alexnet-dense' : 'alexnet',
    channels: 3,
    inputSize: 224,
    resizeSize: 256,
    numClasses,
    // conv1 pad 2 makes 224 → 55 exactly as the paper's 55×55 maps ((224 + 4 − 11) / 4 + 1 = 55).
    layers: alexnetLayers([96, 256, 384, 384, 256], 11, 4, 2, 5, numClasses, dense ? 1 : 2),
    pool: { size: 3, stride: 2 },
    dropout: 0.5,
    lrn: PAPER_LRN,
  });
}

/**
 * `alexnet-small`: the same layer sequence for 28–64 px datasets such as Fashion-MNIST.
 * 1×28×28 crops from a 32×32 resize (28/32 = 224/256), conv1 5×5 stride 1, conv widths
 * 64-192-384-256-256, fc6 = fc7 = 4096. Spatial sizes: 28 → pool 13 → pool 6 → pool 2,
 * so fc6 sees 256·2·2 = 1024 features. ≈ 23.5M parameters, ≈ 0.3 GFLOP per image forward.
 */
export function smallPreset(numClasses = 10, channels = 1, inputSize = 28): Preset {
  return Object.freeze({
    name: 'alexnet-small',
    channels,
    inputSize,
    resizeSize: Math.round((inputSize * 256) / 224),
    numClasses,
    layers: alexnetLayers([64, 192, 384, 256, 256], 5, 1, 2, 5, numClasses),
    pool: { size: 3, stride: 2 },
    dropout: 0.5,
    lrn: PAPER_LRN,
  });
}

export const PRESET_NAMES = ['alexnet', 'alexnet-dense', 'alexnet-small'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export function getPreset(name: string, opts: { numClasses?: number; channels?: number; inputSize?: number } = {}): Preset {
  if (name === 'alexnet' || name === 'alexnet-dense') {
    return Object.freeze({ ...alexnetPreset(opts.numClasses, { dense: name === 'alexnet-dense' }), channels: opts.channels ?? 3 });
  }
  if (name === 'alexnet-small' || name === 'small') return smallPreset(opts.numClasses, opts.channels, opts.inputSize);
  throw new Error(`unknown preset '${name}': expected ${PRESET_NAMES.map((n) => `'${n}'`).join(', ')}`);
}

/** Channel groups of a conv layer (1 when absent). */
export function groupsOf(layer: ConvLayer): number {
  return layer.groups ?? 1;
}

/** Input channels each filter of `layer` sees: cin / groups. Throws when the split is uneven. */
export function groupInChannels(layer: ConvLayer, cin: number): number {
  const g = groupsOf(layer);
  if (!Number.isInteger(g) || g < 1 || cin % g !== 0 || layer.filters % g !== 0) {
    throw new Error(`layer '${layer.name}': groups ${g} must divide both its ${cin} input channels and its ${layer.filters} filters`);
  }
  return cin / g;
}

/** Output size of a conv or pool along one axis (floor mode, as both tfjs 'valid' and ONNX default). */
export function outSize(input: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((input + 2 * pad - kernel) / stride) + 1;
}

export interface LayerShape {
  readonly layer: Layer;
  /** Input features: [C, H, W] for conv, [F] for dense. */
  readonly inShape: readonly number[];
  readonly outShape: readonly number[];
}

/** Walks the preset and computes every layer's input/output shape (after pooling for conv layers). */
export function layerShapes(p: Preset): LayerShape[] {
  let c = p.channels;
  let h = p.inputSize;
  let flat = 0;
  const out: LayerShape[] = [];
  for (const layer of p.layers) {
    if (layer.kind === 'conv') {
      const inShape = [c, h, h];
      h = outSize(h, layer.kernel, layer.stride, layer.pad);
      if (layer.pool) h = outSize(h, p.pool.size, p.pool.stride, 0);
      if (h < 1) throw new Error(`preset '${p.name}': input ${p.inputSize}px is too small, ${layer.name} output vanishes`);
      c = layer.filters;
      out.push({ layer, inShape, outShape: [c, h, h] });
      flat = c * h * h;
    } else {
      out.push({ layer, inShape: [flat], outShape: [layer.units] });
      flat = layer.units;
    }
  }
  return out;
}

/** A layer's kernel shape in tfjs layout: HWIO [k, k, cin / groups, filters] for conv, [in, units] for dense. */
export function kernelShape({ layer, inShape }: LayerShape): number[] {
  if (layer.kind === 'conv') return [layer.kernel, layer.kernel, groupInChannels(layer, inShape[0] ?? 0), layer.filters];
  return [inShape[0] ?? 0, layer.units];
}

export function parameterCount(p: Preset): number {
  return layerShapes(p).reduce((sum, { layer, inShape }) => {
    if (layer.kind === 'conv') return sum + layer.filters * groupInChannels(layer, inShape[0] ?? 0) * layer.kernel * layer.kernel + layer.filters;
    return sum + (inShape[0] ?? 0) * layer.units + layer.units;
  }, 0);
}
