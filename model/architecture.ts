/**
 * AlexNet layer hyper-parameters: the single source of truth for both the tfjs model (training)
 * and the ONNX graph (export). Both builders walk `layers` in order.
 *
 * Shape of the network (Krizhevsky, Sutskever & Hinton 2012): five convolutions, then three fully
 * connected layers; ReLU after every hidden layer; local response normalization after conv1 and
 * conv2; overlapping 3×3 stride-2 max-pooling after conv1, conv2 and conv5; dropout 0.5 on fc6 and
 * fc7; fc8 is N-way and emits logits (softmax is applied by the runtime, not baked into the graph).
 *
 * The paper splits conv2, conv4 and conv5 across two GPUs (grouped convolutions). That split is a
 * hardware workaround of 2012, so the presets here are single-tower: every convolution sees all
 * input channels. Parameter counts are therefore slightly higher than the paper's 60M.
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
export const EMBEDDING_DIM = 4096;

function conv(name: string, filters: number, kernel: number, stride: number, pad: number, biasInit: number, lrn: boolean, pool: boolean): ConvLayer {
  return { kind: 'conv', name, filters, kernel, stride, pad, biasInit, lrn, pool };
}

function alexnetLayers(widths: readonly [number, number, number, number, number], k1: number, s1: number, p1: number, k2: number, numClasses: number): Layer[] {
  const [w1, w2, w3, w4, w5] = widths;
  return [
    conv('conv1', w1, k1, s1, p1, 0, true, true),
    conv('conv2', w2, k2, 1, (k2 - 1) / 2, 1, true, true),
    conv('conv3', w3, 3, 1, 1, 0, false, false),
    conv('conv4', w4, 3, 1, 1, 1, false, false),
    conv('conv5', w5, 3, 1, 1, 1, false, true),
    { kind: 'dense', name: 'fc6', units: 4096, biasInit: 1, hidden: true },
    { kind: 'dense', name: 'fc7', units: 4096, biasInit: 1, hidden: true },
    { kind: 'dense', name: 'fc8', units: numClasses, biasInit: 0, hidden: false },
  ];
}

/** Full-size AlexNet: 3×224×224, conv1 96 11×11/4, 1000 classes (≈ 62M parameters single-tower). */
export function alexnetPreset(numClasses = 1000): Preset {
  return Object.freeze({
    name: 'alexnet',
    channels: 3,
    inputSize: 224,
    resizeSize: 256,
    numClasses,
    // conv1 pad 2 makes 224 → 55 exactly as the paper's 55×55 maps ((224 + 4 − 11) / 4 + 1 = 55).
    layers: alexnetLayers([96, 256, 384, 384, 256], 11, 4, 2, 5, numClasses),
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

export type PresetName = 'alexnet' | 'alexnet-small';

export function getPreset(name: string, opts: { numClasses?: number; channels?: number; inputSize?: number } = {}): Preset {
  if (name === 'alexnet') return Object.freeze({ ...alexnetPreset(opts.numClasses), channels: opts.channels ?? 3 });
  if (name === 'alexnet-small' || name === 'small') return smallPreset(opts.numClasses, opts.channels, opts.inputSize);
  throw new Error(`unknown preset '${name}': expected 'alexnet' or 'alexnet-small'`);
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

export function parameterCount(p: Preset): number {
  return layerShapes(p).reduce((sum, { layer, inShape }) => {
    if (layer.kind === 'conv') return sum + layer.filters * (inShape[0] ?? 0) * layer.kernel * layer.kernel + layer.filters;
    return sum + (inShape[0] ?? 0) * layer.units + layer.units;
  }, 0);
}
