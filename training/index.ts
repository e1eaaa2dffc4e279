/**
 * Public surface of training/: the classifier run (tfjs, wasm kernels, data-parallel workers),
 * fine-tuning, evaluation, datasets, and the codes autoencoder with its retrieval evaluation.
 * Code outside training/ imports this file only.
 */
export { useBackend } from './backend.js';
export { setNativeConvolutions } from './kernels/native-conv.js';
export { readCheckpointData, readCheckpointJson } from './checkpoint.js';
export { trainModel, type TrainOptions } from './run.js';
export { finetune } from './finetune.js';
export { initialState, Trainer } from './trainer.js';
export type { StepPhases, StepProgress, TrainConfig } from './types.js';
export { resumeArgs, resumeCommand, TRAIN_LAYERS, type RunArgs, type TrainLayers, type ValSpec } from './options.js';
export { forward, gaussianFill, initWeights, mulberry32, paramsFromWeights, type InitScheme } from './network.js';
export { evaluateClassifier, formatConfusion, matchLabels } from './evaluate.js';
export type { SquareDataset } from './data/dataset.js';
export { loadFashionMnist } from './data/fashion-mnist.js';
export { loadImageFolder } from './data/image-folder.js';
export { DEFAULT_AE } from './autoencoder.js';
export { exportCodesOnnx, normalizationDescription } from './codes/export.js';
export { trainCodes, trainCodesFromDb, type TrainCodesEvents, type TrainCodesOptions } from './codes/run.js';
export { evaluateRetrieval, METHODS, type RetrievalReport } from './codes/retrieval.js';
export type { NearDupReport } from './codes/near-dup.js';
