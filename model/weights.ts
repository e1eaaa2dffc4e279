/**
 * Trained weights as plain arrays in TensorFlow.js layout, the hand-off format between training
 * (tfjs tensors) and the ONNX exporter (which must not depend on tfjs).
 * Conv kernels are HWIO [k, k, in, out]; dense kernels are [in, out]; biases [out].
 * Dense layers that follow a conv stack consume the NHWC flattening order (h, w, c).
 */
export interface LayerWeights {
  w: Float32Array;
  wShape: number[];
  b: Float32Array;
}
export type NamedWeights = Map<string, LayerWeights>;
