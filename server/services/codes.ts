/**
 * The codes model (autoencoder encoder: 4096-d embedding → B code units) behind a narrow port.
 * A unit > 0 is a 1 bit; codes are packed the way index/ stores them (index/codes.ts packSigns).
 *
 * Interim loader: the autoencoder's owner has not published a loader yet, so this one assumes a
 * graph with one float input [N, D] and takes its first output [N, B] as the pre-sign code
 * values. Replace `loadCodeModel` with theirs when it lands; the port stays.
 */
import { stat } from 'node:fs/promises';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { packSigns } from '../../index/codes.js';
import { ModelLoadError } from '../../model/errors.js';

export interface CodeModel {
  readonly bits: number;
  readonly path: string;
  /** Packed codes of n embeddings laid back to back (n·D floats) → n·B/8 bytes. */
  encode(embeddings: Float32Array, n?: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export async function loadCodeModel(path: string, embeddingDim: number, opts: { threads?: number } = {}): Promise<CodeModel> {
  try {
    if (!(await stat(path)).isFile()) throw new Error('not a file');
  } catch {
    throw new ModelLoadError(`codes model '${path}' does not exist or cannot be read (flag --codes, env SIGHTLINE_CODES)`);
  }
  const session = await InferenceSession.create(path, { intraOpNumThreads: opts.threads ?? 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  if (input === undefined || output === undefined) throw new ModelLoadError(`codes model '${path}' has no input or no output`);
  const run = async (embeddings: Float32Array, n: number): Promise<Float32Array> => {
    const out = await session.run({ [input]: new Tensor('float32', embeddings.subarray(0, n * embeddingDim), [n, embeddingDim]) }, [output]);
    const t = out[output];
    if (!(t instanceof Tensor) || !(t.data instanceof Float32Array)) throw new ModelLoadError(`codes model '${path}': output '${output}' is not float32`);
    return t.data;
  };
  const probe = await run(new Float32Array(embeddingDim), 1);
  const bits = probe.length;
  if (bits < 8 || bits % 8 !== 0) throw new ModelLoadError(`codes model '${path}' emits ${bits} values per embedding; expected a multiple of 8`);
  return {
    bits,
    path,
    async encode(embeddings, n = 1) {
      if (embeddings.length < n * embeddingDim) throw new RangeError(`'embeddings' holds ${embeddings.length} floats, ${n} × ${embeddingDim} needed`);
      const values = await run(embeddings, n);
      const bytes = bits / 8;
      const out = new Uint8Array(n * bytes);
      for (let i = 0; i < n; i++) packSigns(values.subarray(i * bits, (i + 1) * bits), out.subarray(i * bytes, (i + 1) * bytes));
      return out;
    },
    async close() {
      await session.release();
    },
  };
}
