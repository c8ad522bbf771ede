// The GEMMs of one MLP training step at batch 128 (forward X·Wᵀ, weight gradients dYᵀ·X, the
// input gradient dY·W), shared by the GEMM benchmark and the thread-scaling measurement.

/** One GEMM shape: C [m, n] = op(A)·op(B) with K = k. */
export interface GemmShape {
  /** What the product is in the model. */
  name: string;
  /** A is stored transposed. */
  transA: boolean;
  /** B is stored transposed. */
  transB: boolean;
  m: number;
  n: number;
  k: number;
}

/** Batch size of the shapes. */
export const BATCH = 128;

/** The MLP's products at batch 128. */
export const MLP_GEMM_SHAPES: readonly GemmShape[] = [
  { name: "fc1 forward X·W1ᵀ 784→512", transA: false, transB: true, m: BATCH, n: 512, k: 784 },
  { name: "fc2 forward X·W2ᵀ 512→1024", transA: false, transB: true, m: BATCH, n: 1024, k: 512 },
  { name: "fc3 forward X·W3ᵀ 1024→10", transA: false, transB: true, m: BATCH, n: 10, k: 1024 },
  { name: "fc1 weight gradient dYᵀ·X", transA: true, transB: false, m: 512, n: 784, k: BATCH },
  { name: "fc2 weight gradient dYᵀ·X", transA: true, transB: false, m: 1024, n: 512, k: BATCH },
  { name: "fc2 input gradient dY·W", transA: false, transB: false, m: BATCH, n: 512, k: 1024 },
];
