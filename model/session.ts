/**
 * The image model's onnxruntime-node session behind two calls, `createSession` and `run` (in this
 * thread, or in a worker thread through worker-session.ts). Other onnxruntime users (the codes
 * model, quantization calibration, training's feature extraction) reach the runtime through ort.ts,
 * which model/index.ts exports. The model's contract (read from its metadata) decides the
 * input geometry; the graph is checked against it at load, then warmed up with one 10-crop batch.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { InferenceSession, listSupportedBackends, Tensor } from './ort.js';
import type { ModelContract } from './contract.js';
import { channelCount, ContractError } from './contract.js';
import { checkIntOption, InvalidOptionError, ModelLoadError } from './errors.js';
import { expandLrn, readContract } from './onnx/index.js';
import { withOod } from './ood-sidecar.js';
import { int8SaturationWarning, readCpuFlags } from './int8-cpu.js';
import { createWorkerSession } from './worker-session.js';
import { checkRunArgs, cropShape, DEVICES } from './session-types.js';
import type { DeviceRequest, InferenceOutput, ModelSession, Provider, SessionLogger, SessionOptions } from './session-types.js';

export { DEVICES } from './session-types.js';
export type { DeviceRequest, InferenceOutput, ModelSession, Provider, SessionLogger, SessionOptions } from './session-types.js';

const WARMUP_CROPS = 10;

/** Whether the CUDA provider library (not bundled in the npm package) sits next to the binding. */
function cudaInstalled(): boolean {
  const pkg = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  const dir = join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
  const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  return existsSync(join(dir, lib));
}

/** Providers to try, in order; CPU is always the last resort. */
function candidates(device: DeviceRequest): Provider[] {
  if (device === 'cpu') return ['cpu'];
  if (device === 'auto') return cudaInstalled() ? ['cuda', 'cpu'] : ['cpu'];
  return [device, 'cpu'];
}

/** Why a GPU provider is not worth a session attempt here, or undefined when it is. */
function unavailable(p: Provider): string | undefined {
  if (p === 'cpu') return undefined;
  if (!listSupportedBackends().some((b) => b.name === p)) return `onnxruntime-node for ${process.platform}/${process.arch} has no '${p}' provider`;
  if (p === 'cuda' && !cudaInstalled()) {
    return 'the CUDA provider library is not installed (onnxruntime-node downloads it only with ONNXRUNTIME_NODE_INSTALL=cuda12)';
  }
  return undefined;
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0]?.trim() ?? msg;
}

async function openWithFallback(
  modelPath: string,
  device: DeviceRequest,
  logger: SessionLogger | undefined,
  create: (eps: string[]) => Promise<InferenceSession>,
): Promise<{ session: InferenceSession; provider: Provider }> {
  const skipped: Record<string, string> = {};
  for (const p of candidates(device)) {
    const reason = unavailable(p);
    if (reason !== undefined) {
      skipped[p] = reason;
      continue;
    }
    try {
      const session = await create(p === 'cpu' ? ['cpu'] : [p, 'cpu']);
      const why = Object.entries(skipped).map(([k, v]) => `'${k}' not used: ${v}`).join('; ');
      // The message itself names each provider that was passed over and why, so one log line explains the fallback.
      if (p !== device && device !== 'auto') logger?.warn({ requested: device, provider: p, skipped }, `execution provider ${why}; running on '${p}'`);
      else if (why !== '') logger?.info({ requested: device, provider: p, skipped }, `device '${device}': ${why}; running on '${p}'`);
      return { session, provider: p };
    } catch (err) {
      if (p === 'cpu') throw new ModelLoadError(`model '${modelPath}' could not be loaded by onnxruntime: ${firstLine(err)}`);
      skipped[p] = firstLine(err);
    }
  }
  throw new ModelLoadError(`model '${modelPath}': no execution provider could be started`);
}

function tensorDims(meta: readonly InferenceSession.ValueMetadata[], name: string): readonly (number | string)[] | undefined {
  const m = meta.find((v) => v.name === name);
  return m && m.isTensor ? m.shape : undefined;
}

/** A fixed dimension that differs from `want`; symbolic or unknown dimensions pass. */
function mismatch(dim: number | string | undefined, want: number): boolean {
  return typeof dim === 'number' && dim >= 0 && dim !== want;
}

/** Checks the graph's declared I/O against the contract; ContractError names what does not fit. */
function checkGraph(contract: ModelContract, modelPath: string, session: InferenceSession): void {
  const { io, preprocess, labels, embeddingDim } = contract;
  const fail = (what: string): never => {
    throw new ContractError(`model '${modelPath}' does not fit its contract: ${what}`);
  };
  if (!session.inputNames.includes(io.input)) fail(`graph has no input '${io.input}' (inputs: ${session.inputNames.join(', ')})`);
  if (session.inputNames.length !== 1) fail(`graph needs inputs ${session.inputNames.join(', ')}; only '${io.input}' can be fed`);
  for (const name of [io.logits, io.embedding]) {
    if (!session.outputNames.includes(name)) fail(`graph has no output '${name}' (outputs: ${session.outputNames.join(', ')})`);
  }
  const inputMeta = session.inputMetadata.find((v) => v.name === io.input);
  if (inputMeta?.isTensor && inputMeta.type !== 'float32') fail(`input '${io.input}' is ${inputMeta.type}, expected float32`);
  const input = tensorDims(session.inputMetadata, io.input);
  if (input && input.length > 0) {
    const c = channelCount(preprocess);
    const size = preprocess.inputSize;
    if (input.length !== 4) fail(`input '${io.input}' has rank ${input.length}, expected 4 (N, C, H, W)`);
    if (typeof input[0] === 'number' && input[0] > 0) fail(`input '${io.input}' has a fixed batch size ${input[0]}; a dynamic batch dimension is required`);
    if (mismatch(input[1], c)) fail(`input '${io.input}' has ${String(input[1])} channels, preprocess.channels '${preprocess.channels}' gives ${c}`);
    if (mismatch(input[2], size) || mismatch(input[3], size)) {
      fail(`input '${io.input}' is ${String(input[2])}×${String(input[3])}, preprocess.inputSize is ${size}`);
    }
  }
  const logits = tensorDims(session.outputMetadata, io.logits);
  if (logits && logits.length > 0 && (logits.length !== 2 || mismatch(logits[1], labels.length))) {
    fail(`output '${io.logits}' has shape [${logits.join(', ')}], the contract lists ${labels.length} labels`);
  }
  const emb = tensorDims(session.outputMetadata, io.embedding);
  if (emb && emb.length > 0 && (emb.length !== 2 || mismatch(emb[1], embeddingDim))) {
    fail(`output '${io.embedding}' has shape [${emb.join(', ')}], the contract says embeddingDim ${embeddingDim}`);
  }
}

/** The same check on real outputs, for graphs whose declared shapes are symbolic. */
function checkOutputs(contract: ModelContract, modelPath: string, n: number, logitsLen: number, embLen: number): void {
  const { io, labels, embeddingDim } = contract;
  if (logitsLen !== n * labels.length) {
    throw new ContractError(`model '${modelPath}' does not fit its contract: output '${io.logits}' gave ${logitsLen / n} values per image, the contract lists ${labels.length} labels`);
  }
  if (embLen !== n * embeddingDim) {
    throw new ContractError(`model '${modelPath}' does not fit its contract: output '${io.embedding}' gave ${embLen / n} values per image, embeddingDim is ${embeddingDim}`);
  }
}

async function checkFile(modelPath: string): Promise<void> {
  try {
    const s = await stat(modelPath);
    if (!s.isFile()) throw new ModelLoadError(`model path '${modelPath}' is not a file`);
  } catch (err) {
    if (err instanceof ModelLoadError) throw err;
    throw new ModelLoadError(`model file '${modelPath}' does not exist or cannot be read`);
  }
}

function tensorData(value: unknown, name: string, modelPath: string): Float32Array {
  if (value instanceof Tensor && value.data instanceof Float32Array) return value.data;
  throw new ModelLoadError(`model '${modelPath}': output '${name}' is not a float32 tensor`);
}

class OrtModelSession implements ModelSession {
  readonly inputShape: readonly [number, number, number];
  private closed = false;

  constructor(
    private readonly session: InferenceSession,
    readonly contract: ModelContract,
    readonly modelPath: string,
    readonly provider: Provider,
  ) {
    this.inputShape = cropShape(contract);
  }

  async run(batch: Float32Array, n: number): Promise<InferenceOutput> {
    if (this.closed) throw new ModelLoadError(`model session for '${this.modelPath}' is closed`);
    const need = checkRunArgs(batch, n, this.inputShape);
    const input = new Tensor('float32', batch.length === need ? batch : batch.subarray(0, need), [n, ...this.inputShape]);
    const { io } = this.contract;
    const out = await this.session.run({ [io.input]: input }, [io.logits, io.embedding]);
    const logits = tensorData(out[io.logits], io.logits, this.modelPath);
    const embedding = tensorData(out[io.embedding], io.embedding, this.modelPath);
    checkOutputs(this.contract, this.modelPath, n, logits.length, embedding.length);
    return { logits, embedding, n };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}

/** Loads, validates and warms up a model. A provider that is unavailable falls back to the next one, down to CPU (see `candidates`). */
export async function createSession(modelPath: string, opts: SessionOptions = {}): Promise<ModelSession> {
  const threads = checkIntOption('threads', opts.threads ?? 2, 1, 256);
  const device = opts.device ?? 'auto';
  if (!DEVICES.includes(device)) throw new InvalidOptionError(`'device' must be one of ${DEVICES.join(', ')}, got '${String(device)}'`);
  await checkFile(modelPath);
  const contract = await withOod(await readContract(modelPath), modelPath, (msg) => opts.logger?.warn({ model: modelPath }, msg));
  const int8Warning = int8SaturationWarning(contract, readCpuFlags());
  if (int8Warning) opts.logger?.warn({ model: modelPath }, int8Warning);
  const spin = opts.spin ?? true;
  if (opts.worker) return createWorkerSession({ modelPath, device, threads, spin }, opts.logger);
  const base: InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    // One graph at a time per session; concurrency comes from batching, not from inter-op threads.
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Session config entries session.intra_op.allow_spinning / session.inter_op.allow_spinning.
    extra: { session: { intra_op: { allow_spinning: spin ? '1' : '0' }, inter_op: { allow_spinning: spin ? '1' : '0' } } },
  };
  // LRN nodes are rewritten as plain operators before loading: onnxruntime's LRN kernel was the
  // slowest node of AlexNet (onnx/lrn.ts). Other models load from their path, as they are.
  const lrn = expandLrn(await readFile(modelPath), modelPath);
  const source = lrn?.bytes ?? modelPath;
  const { session, provider } = await openWithFallback(modelPath, device, opts.logger, (eps) =>
    typeof source === 'string' ? InferenceSession.create(source, { ...base, executionProviders: eps }) : InferenceSession.create(source, { ...base, executionProviders: eps }),
  );
  try {
    checkGraph(contract, modelPath, session);
    const model = new OrtModelSession(session, contract, modelPath, provider);
    // Warm-up: the first run allocates the arena and picks kernels; do it before the first request.
    await model.run(new Float32Array(WARMUP_CROPS * model.inputShape.reduce((a, b) => a * b, 1)), WARMUP_CROPS);
    opts.logger?.info({ model: modelPath, provider, threads, spin, name: contract.name, version: contract.modelVersion }, 'model session ready');
    return model;
  } catch (err) {
    await session.release();
    throw err;
  }
}
