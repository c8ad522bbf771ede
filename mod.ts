/**
 * tapegrad: a tiny, fast, tape-based reverse-mode autograd library for Deno over strided Float32
 * tensors, with PyTorch-shaped `nn` layers, optimizers and safetensors checkpoints.
 *
 * ```ts
 * import { tensor } from "@tapegrad/tapegrad";
 *
 * const w = tensor([0.5, -1], { requiresGrad: true });
 * const loss = w.mul(w).sum();
 * loss.backward();
 * console.log(w.grad?.toArray()); // [1, -2]
 * ```
 *
 * @module
 */

export * from "./autograd/mod.ts";
export * from "./nn/mod.ts";
