/**
 * The model contract: what an ONNX file must say about itself so the runtime can feed it.
 * It travels inside the file as `metadata_props` (key `sightline.contract`, JSON), so nothing
 * about preprocessing is hard-coded per model anywhere else.
 */
import { z } from 'zod';
import { ModelError } from './errors.js';
import { oodSchema } from './ood.js';

export const CONTRACT_KEY = 'sightline.contract';
export const CONTRACT_VERSION = 1;

/** Graph names of our contract: input `images` [N, C, H, W] float32, outputs `logits` [N, K] and `embedding` [N, D]. */
export const INPUT_NAME = 'images';
export const LOGITS_NAME = 'logits';
export const EMBEDDING_NAME = 'embedding';

export const preprocessSchema = z.object({
  /** Crop fed to the network (H = W). */
  inputSize: z.number().int().min(8).max(1024),
  /** Shorter side resized to this, then a centered square of this size is cut; crops come from that square. */
  resizeSize: z.number().int().min(8).max(2048),
  /** Channel order of the tensor. `gray` = one channel (luminance). */
  channels: z.enum(['rgb', 'bgr', 'gray']),
  /** Raw 0–255 values are multiplied by `scale` first (1/255 for torchvision, 1 for caffe). */
  scale: z.number().positive(),
  /** Per-channel mean subtracted after scaling, in tensor channel order. */
  mean: z.array(z.number()).min(1).max(3),
  /** Per-channel divisor applied after the mean, in tensor channel order. */
  std: z.array(z.number().positive()).min(1).max(3),
  /** Transparent pixels are flattened onto this RGB background (0–255). */
  background: z.tuple([z.number(), z.number(), z.number()]).default([255, 255, 255]),
});
export type PreprocessContract = z.infer<typeof preprocessSchema>;

export const contractSchema = z.object({
  version: z.literal(CONTRACT_VERSION),
  name: z.string().min(1),
  modelVersion: z.string().min(1),
  preset: z.string().min(1),
  labels: z.array(z.string()).min(1),
  preprocess: preprocessSchema,
  /** Graph tensor names, so imported models keep their own names. */
  io: z.object({ input: z.string(), logits: z.string(), embedding: z.string() }),
  embeddingDim: z.number().int().positive(),
  /** Free-form numbers such as test accuracy, recorded by training. */
  metrics: z.record(z.string(), z.number()).default({}),
  /** Where the model came from: 'sightline-train', 'random-init', 'import:torchvision', ... */
  source: z.string().default('unknown'),
  /**
   * When a classification is `unknown` (see ood.ts). Absent in the file: the sidecar
   * `<model>.ood.json` when there is one, else the documented default (max-softmax).
   */
  ood: oodSchema.optional(),
  /** Set by `sightline quantize`: how the int8 graph was made from its fp32 original. */
  quantization: z
    .object({
      /** 'qdq-int8': QuantizeLinear/DequantizeLinear pairs that onnxruntime fuses into int8 kernels. */
      format: z.literal('qdq-int8'),
      weights: z.string(),
      /**
       * Range of the int8 weights: 7 (±63) runs exactly on every x86 CPU; 8 (±127) saturates in
       * onnxruntime's u8×s8 kernels on CPUs without VNNI (see onnx/quantize-math.ts). Files made
       * before this field existed used 8.
       */
      weightBits: z.union([z.literal(7), z.literal(8)]).default(8),
      activations: z.string(),
      /** Calibration set ('fashion-mnist train' or a folder), images and crops run, range method. */
      calibration: z.object({ set: z.string(), images: z.number().int().positive(), crops: z.number().int().positive(), method: z.string() }),
      /** Conv/Gemm nodes quantized, and those left in float (with why). */
      quantizedNodes: z.number().int().nonnegative(),
      floatNodes: z.array(z.string()).default([]),
      from: z.object({ name: z.string(), modelVersion: z.string() }),
    })
    .optional(),
});
export type ModelContract = z.infer<typeof contractSchema>;

/** The model file does not carry or does not fit our contract: the server cannot serve it (unavailable). */
export class ContractError extends ModelError {
  override readonly name = 'ContractError';
  readonly kind = 'unavailable';
  readonly code = 'model_contract';
}

/** Parses the contract JSON found in a model's metadata; the message names what is wrong. */
export function parseContract(json: string | undefined, modelPath: string): ModelContract {
  if (json === undefined) {
    throw new ContractError(`model '${modelPath}' has no '${CONTRACT_KEY}' metadata: export it with 'sightline export' or wrap it with 'sightline import'`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new ContractError(`model '${modelPath}': '${CONTRACT_KEY}' is not valid JSON (${(err as Error).message})`);
  }
  const parsed = contractSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ContractError(`model '${modelPath}': contract field '${issue?.path.join('.') ?? '?'}' ${issue?.message ?? 'is invalid'}`);
  }
  const c = parsed.data;
  const nch = c.preprocess.channels === 'gray' ? 1 : 3;
  if (c.preprocess.mean.length !== nch || c.preprocess.std.length !== nch) {
    throw new ContractError(`model '${modelPath}': mean/std must have ${nch} values for channels '${c.preprocess.channels}'`);
  }
  return Object.freeze(c);
}

export function channelCount(p: PreprocessContract): number {
  return p.channels === 'gray' ? 1 : 3;
}
