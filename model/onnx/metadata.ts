/**
 * Reads the top-level fields of an ONNX ModelProto (versions, producer, metadata_props) without
 * decoding the graph. Field 7 (`graph`) holds every weight — 244 MB for AlexNet — so it is skipped
 * by its length prefix; from a path only a few small reads at known offsets touch the disk.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { ModelContract } from '../contract.js';
import { CONTRACT_KEY, parseContract } from '../contract.js';
import { OnnxError } from './errors.js';
import { onnx } from './proto.js';

export interface OnnxHeader {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  opsetImports: { domain: string; version: number }[];
  metadata: Record<string, string>;
  /** Size of the serialized graph (weights included). */
  graphBytes: number;
}

/** ModelProto field numbers (onnx.proto3). */
const F = { irVersion: 1, producerName: 2, producerVersion: 3, domain: 4, modelVersion: 5, docString: 6, graph: 7, opset: 8, metadata: 14 } as const;

type ReadAt = (pos: number, len: number) => Uint8Array;

/** Varint as a JS number (exact below 2^53, plenty for lengths and versions). */
function readVarint(buf: Uint8Array, at: number, what: string): { value: number; next: number } {
  let value = 0;
  let mul = 1;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const b = buf[i] ?? 0;
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return { value, next: i + 1 };
    mul *= 128;
  }
  throw new OnnxError('onnx_malformed', `${what}: truncated varint at byte ${at}`);
}

function emptyHeader(): OnnxHeader {
  return { irVersion: 0, producerName: '', producerVersion: '', domain: '', modelVersion: 0, docString: '', opsetImports: [], metadata: {}, graphBytes: 0 };
}

const utf8 = new TextDecoder();

function applyField(h: OnnxHeader, field: number, payload: Uint8Array): void {
  if (field === F.producerName) h.producerName = utf8.decode(payload);
  else if (field === F.producerVersion) h.producerVersion = utf8.decode(payload);
  else if (field === F.domain) h.domain = utf8.decode(payload);
  else if (field === F.docString) h.docString = utf8.decode(payload);
  else if (field === F.opset) {
    const o = onnx.OperatorSetIdProto.decode(payload);
    h.opsetImports.push({ domain: o.domain, version: Number(o.version) });
  } else if (field === F.metadata) {
    const e = onnx.StringStringEntryProto.decode(payload);
    h.metadata[e.key] = e.value;
  }
}

/** Walks the top-level fields; only the small length-delimited ones are read in full. */
function scanHeader(size: number, readAt: ReadAt, what: string): OnnxHeader {
  const h = emptyHeader();
  const wanted = new Set<number>([F.producerName, F.producerVersion, F.domain, F.docString, F.opset, F.metadata]);
  let pos = 0;
  let sawGraph = false;
  while (pos < size) {
    // A tag plus a length fit in 15 bytes (5-byte tag varint, 10-byte length varint).
    const head = readAt(pos, Math.min(15, size - pos));
    const tag = readVarint(head, 0, what);
    const field = Math.floor(tag.value / 8);
    const wire = tag.value & 7;
    if (field === 0) throw new OnnxError('onnx_malformed', `${what} is not an ONNX model (field 0 at byte ${pos})`);
    if (wire === 0) {
      const v = readVarint(head, tag.next, what);
      if (field === F.irVersion) h.irVersion = v.value;
      else if (field === F.modelVersion) h.modelVersion = v.value;
      pos += v.next;
    } else if (wire === 2) {
      const len = readVarint(head, tag.next, what);
      const start = pos + len.next;
      if (start + len.value > size) throw new OnnxError('onnx_malformed', `${what} is not an ONNX model (field ${field} runs past the end)`);
      if (field === F.graph) {
        sawGraph = true;
        h.graphBytes = len.value;
      } else if (wanted.has(field)) applyField(h, field, readAt(start, len.value));
      pos = start + len.value;
    } else if (wire === 1) pos += tag.next + 8;
    else if (wire === 5) pos += tag.next + 4;
    else throw new OnnxError('onnx_malformed', `${what} is not an ONNX model (wire type ${wire} at byte ${pos})`);
  }
  if (!sawGraph || h.irVersion === 0) throw new OnnxError('onnx_malformed', `${what} is not an ONNX model (no ir_version or graph)`);
  return h;
}

export function readHeaderFromBytes(bytes: Uint8Array, what = 'model'): OnnxHeader {
  return scanHeader(bytes.length, (pos, len) => bytes.subarray(pos, pos + len), what);
}

export function readHeaderFromFile(path: string): OnnxHeader {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    return scanHeader(
      size,
      (pos, len) => {
        const buf = new Uint8Array(len);
        const n = readSync(fd, buf, 0, len, pos);
        return buf.subarray(0, n);
      },
      `'${path}'`,
    );
  } finally {
    closeSync(fd);
  }
}

export function readHeader(src: string | Uint8Array): OnnxHeader {
  return typeof src === 'string' ? readHeaderFromFile(src) : readHeaderFromBytes(src);
}

export function readContractSync(src: string | Uint8Array): ModelContract {
  const header = readHeader(src);
  return parseContract(header.metadata[CONTRACT_KEY], typeof src === 'string' ? src : '<bytes>');
}

/** The model's contract from its metadata_props; cheap even for a 244 MB file (the graph is skipped). */
export async function readContract(src: string | Uint8Array): Promise<ModelContract> {
  return readContractSync(src);
}

/** Human-readable metadata that travels next to the contract JSON (what `sightline inspect`-like tools show). */
export function contractMetadata(c: ModelContract): Record<string, string> {
  const labels = c.labels.length <= 20 ? c.labels.join(', ') : `${c.labels.slice(0, 20).join(', ')}, … (${c.labels.length} labels)`;
  return {
    [CONTRACT_KEY]: JSON.stringify(c),
    'sightline.preset': c.preset,
    'sightline.labels': labels,
    'sightline.source': c.source,
    'sightline.io': `input ${c.io.input}; logits ${c.io.logits}; embedding ${c.io.embedding} (${c.embeddingDim}-d, fc7 after ReLU)`,
  };
}
