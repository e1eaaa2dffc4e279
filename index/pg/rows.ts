/**
 * Conversions between the catalog's in-memory forms and PostgreSQL values: packed codes (bit i in
 * byte i >> 3, mask 1 << (i & 7)) ↔ `bit(n)` text, float16 embeddings ↔ `halfvec` (text in,
 * `halfvec_send` bytes out, big-endian) or `bytea` (the SQLite catalog's little-endian blob), rows ↔
 * ImageRecord. node-postgres returns int8 as strings and PGlite bytea as Uint8Array: both normalised here.
 */
import { decodeHalf, halfView } from '../float16.js';
import type { ImageRecord, LabelScore, OodScore } from '../records.js';
import type { VectorKind } from './schema.js';

/** `bit(n)` literal text of a packed code. */
export function bitString(code: Uint8Array, bits: number): string {
  let s = '';
  for (let i = 0; i < bits; i++) s += ((code[i >> 3] as number) >> (i & 7)) & 1 ? '1' : '0';
  return s;
}

export function fromBitString(text: string): Uint8Array {
  const out = new Uint8Array(Math.ceil(text.length / 8));
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 49) out[i >> 3] = (out[i >> 3] as number) | (1 << (i & 7));
  return out;
}

export function toBuffer(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError(`expected bytes from the database, got ${typeof v}`);
}

/** The SQL expression that reads `embeddings.vector` as bytes (decoded by halvesOf). */
export function vectorBytesSql(kind: VectorKind): string {
  return kind === 'halfvec' ? 'halfvec_send(vector)' : 'vector';
}

/** The stored float16 halves, little-endian as in the SQLite blob, from vectorBytesSql's bytes. */
export function halvesOf(kind: VectorKind, bytes: unknown): Uint16Array {
  const b = toBuffer(bytes);
  if (kind === 'bytea') return halfView(b);
  // halfvec_send: int16 dim, int16 unused, then dim big-endian halves.
  const dim = b.readUInt16BE(0);
  const out = new Uint16Array(dim);
  for (let i = 0; i < dim; i++) out[i] = b.readUInt16BE(4 + 2 * i);
  return out;
}

/** The insert parameter for a prepared (little-endian float16) embedding blob. */
export function vectorParam(kind: VectorKind, blob: Buffer): string | Buffer {
  if (kind === 'bytea') return blob;
  // Every float16 value prints exactly and parses back to the same half.
  return `[${Array.from(decodeHalf(halfView(blob))).join(',')}]`;
}

export function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

export function labelsOf(v: unknown): LabelScore[] {
  return (typeof v === 'string' ? JSON.parse(v) : v) as LabelScore[];
}

/** The meta values a process checks its loaded model against (PostgresBackend.checkCurrent). */
export interface StoredHashes {
  bits: unknown;
  model_hash: unknown;
  code_model_hash: unknown;
}

/** StoredHashes as columns of any query: subqueries on the 7-row meta table, nearly free. */
export const STORED_HASHES = ['bits', 'model_hash', 'code_model_hash'].map((k) => `(SELECT value FROM meta WHERE key = '${k}') AS ${k}`).join(', ');

export const RECORD_COLUMNS = 'id, source, sha256, width, height, labels, code::text AS code, ood_score, ood_basis, model_hash, code_model_hash, created_at, updated_at';

/** Both columns or neither: a score is meaningless without the basis it was computed on. */
export function oodOf(r: Record<string, unknown>): OodScore | null {
  const score = r['ood_score'];
  const basis = r['ood_basis'];
  return score == null || basis == null ? null : { score: num(score), basis: String(basis) };
}

function iso(v: unknown): string {
  return v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString();
}

export function toRecord(r: Record<string, unknown>): ImageRecord {
  return {
    id: num(r['id']),
    source: String(r['source']),
    sha256: String(r['sha256']),
    width: num(r['width']),
    height: num(r['height']),
    labels: labelsOf(r['labels']),
    code: fromBitString(String(r['code'])),
    ood: oodOf(r),
    modelHash: String(r['model_hash']),
    codesHash: String(r['code_model_hash']),
    createdAt: iso(r['created_at']),
    updatedAt: iso(r['updated_at']),
  };
}
