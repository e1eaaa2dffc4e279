/**
 * Entry of the inference worker thread (model/worker-session.ts): one onnxruntime session,
 * runs on request. onnxruntime-node's `run()` holds the calling thread for the whole batch, so
 * running it here leaves the main thread free to parse requests, decode and cut crops meanwhile.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ModelError } from './errors.js';
import { createSession, type ModelSession } from './session.js';
import type { FromSessionWorker, SessionWorkerData, ToSessionWorker, WorkerErrorInfo } from './worker-protocol.js';

function info(err: unknown): WorkerErrorInfo {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const kind = err instanceof ModelError ? err.kind : undefined;
  const code = (err as Error & { code?: unknown }).code;
  return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}), ...(kind ? { kind } : {}) };
}

/**
 * A buffer that holds exactly this array moves to the main thread without a copy; anything else
 * (a view into a larger or pooled buffer) is copied by postMessage, leaving its owner intact.
 */
function ownBuffer(a: Float32Array): ArrayBuffer[] {
  const b = a.buffer;
  return b instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === b.byteLength ? [b] : [];
}

const port = parentPort;
if (!port) throw new Error('model/session-worker.ts must run in a worker thread');
const post = (m: FromSessionWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
const data = workerData as SessionWorkerData;
const logger = {
  info: (obj: object, msg: string) => post({ type: 'log', level: 'info', obj, msg }),
  warn: (obj: object, msg: string) => post({ type: 'log', level: 'warn', obj, msg }),
};

let session: ModelSession | undefined;
try {
  session = await createSession(data.modelPath, { device: data.device, threads: data.threads, spin: data.spin, logger });
  post({ type: 'ready', contract: session.contract, provider: session.provider });
} catch (err) {
  post({ type: 'init-error', error: info(err) });
}

/** The shared input slots the main thread has handed over (worker-session.ts), by id. */
const slots = new Map<number, Float32Array>();
// Private copies of the slots' crops: onnxruntime-node refuses an array on a SharedArrayBuffer
// ('Invalid argument'). Kept and reused, never transferred (a transfer counts as new external
// memory and drives the garbage collector; see worker-session.ts).
const copies: Float32Array[] = [];

function takeCopy(need: number, capacity: number): Float32Array {
  const i = copies.findIndex((c) => c.length >= need);
  return (i >= 0 ? copies.splice(i, 1)[0] : undefined) ?? new Float32Array(capacity);
}

function runSlot(s: ModelSession, m: Extract<ToSessionWorker, { type: 'run' }>): void {
  const shared = slots.get(m.slot);
  const need = m.n * s.inputShape.reduce((a, b) => a * b, 1);
  if (!shared || shared.length < need) {
    post({ type: 'run-error', id: m.id, error: { name: 'Error', message: `input slot ${m.slot} ${shared ? `holds ${shared.length} floats, ${m.n} crops need ${need}` : 'is unknown'}` } });
    return;
  }
  const copy = takeCopy(need, shared.length);
  copy.set(shared.subarray(0, need));
  const done = (): void => {
    if (copies.length < 4) copies.push(copy);
  };
  s.run(copy, m.n).then(
    (out) => {
      done();
      post({ type: 'result', id: m.id, logits: out.logits, embedding: out.embedding }, [out.logits, out.embedding].flatMap(ownBuffer));
    },
    (err: unknown) => {
      done();
      post({ type: 'run-error', id: m.id, error: info(err) });
    },
  );
}

port.on('message', (m: ToSessionWorker) => {
  if (m.type === 'slot') {
    slots.set(m.slot, new Float32Array(m.buffer));
    return;
  }
  if (m.type === 'drop') {
    slots.delete(m.slot);
    return;
  }
  const s = session;
  if (m.type === 'close') {
    void (s ? s.close() : Promise.resolve()).finally(() => {
      post({ type: 'closed' });
      port.close();
    });
    return;
  }
  if (s) runSlot(s, m);
});
