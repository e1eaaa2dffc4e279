/** Typed errors of the ONNX exporter/importer, in the model/ error family (stable `code`, HTTP `status`). */
import { ModelError } from '../errors.js';

export type OnnxErrorCode = 'onnx_invalid_weights' | 'onnx_invalid_contract' | 'onnx_invalid_argument' | 'onnx_malformed' | 'onnx_unsupported_graph';

const STATUS: Record<OnnxErrorCode, number> = {
  onnx_invalid_weights: 400,
  onnx_invalid_contract: 400,
  onnx_invalid_argument: 400,
  onnx_malformed: 422,
  onnx_unsupported_graph: 422,
};

export class OnnxError extends ModelError {
  override readonly name = 'OnnxError';
  readonly status: number;
  constructor(
    readonly code: OnnxErrorCode,
    message: string,
  ) {
    super(message);
    this.status = STATUS[code];
  }
}
