/** Typed errors of the ONNX exporter/importer, in the model/ error family (a `kind` and a stable `code`). */
import { ModelError, type ModelErrorKind } from '../errors.js';

export type OnnxErrorCode = 'onnx_invalid_weights' | 'onnx_invalid_contract' | 'onnx_invalid_argument' | 'onnx_malformed' | 'onnx_unsupported_graph';

const KIND: Record<OnnxErrorCode, ModelErrorKind> = {
  onnx_invalid_weights: 'invalid_argument',
  onnx_invalid_contract: 'invalid_argument',
  onnx_invalid_argument: 'invalid_argument',
  onnx_malformed: 'invalid_argument',
  onnx_unsupported_graph: 'unsupported',
};

export class OnnxError extends ModelError {
  override readonly name = 'OnnxError';
  readonly kind: ModelErrorKind;
  constructor(
    readonly code: OnnxErrorCode,
    message: string,
  ) {
    super(message);
    this.kind = KIND[code];
  }
}
