/**
 * ONNX export: {@linkcode exportOnnx} traces a model's forward pass on the tape and writes an
 * `.onnx` file (opset 18) that ONNX Runtime and other ONNX tools run. A separate entry point
 * (`@tapegrad/tapegrad/onnx`), so the core library carries no protobuf code.
 *
 * ```ts
 * import { zeros } from "@tapegrad/tapegrad";
 * import { MLP } from "@tapegrad/tapegrad/nn";
 * import { exportOnnx } from "@tapegrad/tapegrad/onnx";
 *
 * const bytes = exportOnnx(new MLP(), zeros([1, 1, 28, 28])); // the .onnx file's bytes
 * console.log(bytes.length > 3_700_000); // true: the MLP's 937,482 float32 weights
 * ```
 *
 * @module
 */

export {
  exportOnnx,
  type ExportOnnxOptions,
  ONNX_OP_MAPPING,
  ONNX_OPSET,
  OnnxExportError,
} from "./export.ts";
export {
  encodeOnnxModel,
  type OnnxAttribute,
  OnnxDataType,
  type OnnxDim,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
} from "./proto.ts";
