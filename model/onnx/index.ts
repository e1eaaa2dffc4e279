/** ONNX export (tfjs weights → ONNX), import (torchvision / Caffe AlexNet → Sightline) and contract reading. */
export { exportOnnx } from './export.js';
export type { ExportContract, ExportOptions } from './export.js';
export { importOnnx, importOnnxDetailed, IMPORT_PRESETS, IMPORT_PREPROCESS } from './import.js';
export type { ImportOptions, ImportPreset, ImportResult } from './import.js';
export { readContract, readContractSync, readHeader } from './metadata.js';
export { expandLrn, lrnNodes } from './lrn.js';
export type { LrnParams } from './lrn.js';
export type { OnnxHeader } from './metadata.js';
export { inspectOnnx, formatSummary } from './inspect.js';
export type { OnnxSummary, TensorSummary } from './inspect.js';
export { float32ToFloat16Bits, float16BitsToFloat32, toFloat16Array, fromFloat16Array } from './fp16.js';
/** Protobuf builders, for code that writes its own small graphs (the codes models in training/). */
export { attr, DataType, decodeModel, encodeModel, floatTensor, int64Tensor, modelProto, node, valueInfo } from './proto.js';
export type { INodeProto, ITensorProto, IValueInfoProto } from './proto.js';
export { OnnxError } from './errors.js';
export type { OnnxErrorCode } from './errors.js';
export { readDenseHead, replaceDenseLayers, tensorFloats, withFeatureOutputs } from './head.js';
export type { DenseHead, HeadLayer } from './head.js';
export { readPresetWeights } from './read-weights.js';
export { planQuantization, quantizeModel, replaceContract } from './quantize.js';
export type { QuantPlan, QuantizeInfo } from './quantize.js';
export { CALIBRATION_METHODS, DEFAULT_WEIGHT_BITS, PERCENTILE_TAIL, WEIGHT_BITS } from './quantize-math.js';
export type { CalibrationMethod, WeightBits } from './quantize-math.js';
