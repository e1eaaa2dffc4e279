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

port.on('message', (m: ToSessionWorker) => {
  const s = session;
  if (m.type === 'close') {
    void (s ? s.close() : Promise.resolve()).finally(() => {
      post({ type: 'closed' });
      port.close();
    });
    return;
  }
  if (!s) return;
  // The input goes back with the answer (moved, not copied) for the main thread to refill.
  const batch = m.batch;
  s.run(batch, m.n).then(
    (out) => post({ type: 'result', id: m.id, logits: out.logits, embedding: out.embedding, batch }, [...[out.logits, out.embedding].flatMap(ownBuffer), ...ownBuffer(batch)]),
    (err: unknown) => post({ type: 'run-error', id: m.id, error: info(err), batch }, ownBuffer(batch)),
  );
});
