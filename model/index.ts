/** Public surface of model/: presets, the contract, preprocessing, the runtime session and classification. */
export * from './architecture.js';
export * from './contract.js';
export * from './weights.js';
export * from './errors.js';
export * from './preprocess.js';
export { createSession, DEVICES } from './session.js';
/** onnxruntime-node with its telemetry off (see ort.ts): the only way other folders reach it. */
export { InferenceSession, Tensor } from './ort.js';
export type { DeviceRequest, InferenceOutput, ModelSession, Provider, SessionLogger, SessionOptions } from './session.js';
export { averageSoftmax, l2Norm, meanRows, rowArgmax, softmax, topK } from './classify.js';
export type { Prediction } from './classify.js';
export { classifyImage, embedImage, ImagePipeline, sessionPipeline } from './pipeline.js';
export type { Classification, EncodedImage, EncodeRequest, Embedding, ImageInfo, ImageOptions, ImagePipelineOptions, RunCrops, RunPriority, Timings } from './pipeline.js';
export * from './onnx/index.js';
// The calibration run needs onnxruntime, so it stays out of onnx/index.ts (which the exporter uses).
export { calibrate, rangesOf } from './onnx/quantize-calibrate.js';
export type { CalibrationBatch } from './onnx/quantize-calibrate.js';
export {
  checkCodesFor,
  CODES_INPUT,
  CODES_KEY,
  CODES_OUTPUT,
  codesMetaSchema,
  CodesMismatchError,
  CROP_POLICIES,
  createCodesSession,
  DEFAULT_CROP_POLICY,
  packRows,
  parseCodesMeta,
  policyCrops,
  readCodesMeta,
} from './codes.js';
export { FALLBACK_PREFIX, fallbackCodes, fallbackCodesName, parseFallbackName } from './codes-fallback.js';
export { sha256File } from './hash.js';
export type { CodesMeta, CodesSession, CodesSessionOptions, CropPolicy, EncodedCodes } from './codes.js';
export * from './registry/index.js';
export { DEFAULT_OOD, fitOod, OOD_STATISTICS, oodBasis, oodSchema, oodScores, oodVerdict, storedVerdict } from './ood.js';
export type { OodContract, OodFeatures, OodStatistic } from './ood.js';
export { oodSidecarPath, withOod, writeOodSidecar } from './ood-sidecar.js';
