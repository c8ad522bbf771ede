// The AlexNet convolutions at batch 128, forward and backward (input, filter and bias gradients),
// with the WebAssembly kernels (one GEMM per pass over the batch, im2col fused into the packing)
// against the reference kernels (im2col + GEMM per image) as baseline. GFLOPS = the GFLOP in the
// bench name / the time per iteration.
//
//   deno bench --allow-read --allow-env bench/conv_bench.ts

import type { ConvGeometry } from "../autograd/kernels/conv.ts";
import { convBackwardReference, convForwardReference } from "../autograd/kernels/conv.ts";
import type { ConvBackwardArgs, ConvForwardArgs } from "../autograd/kernels/types.ts";
import { wasmConvBackward, wasmConvForward } from "../autograd/kernels/wasm/conv.ts";
import { threadsReady, wasmAvailable } from "../autograd/kernels/wasm/gemm.ts";

const N = 128;

interface Layer {
  name: string;
  C: number;
  H: number;
  O: number;
  k: number;
  s: number;
  p: number;
  /** Whether the input gradient is needed (not for the first layer). */
  gx: boolean;
}

const layers: Layer[] = [
  { name: "conv1 1→32 k4 s2, 28→13", C: 1, H: 28, O: 32, k: 4, s: 2, p: 0, gx: false },
  { name: "conv2 32→64 k3 s2 p1, 13→7", C: 32, H: 13, O: 64, k: 3, s: 2, p: 1, gx: true },
  { name: "conv3 64→128 k3 s2 p1, 7→4", C: 64, H: 7, O: 128, k: 3, s: 2, p: 1, gx: true },
];

function random(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

if (wasmAvailable) await threadsReady();

for (const l of layers) {
  const out = Math.floor((l.H + 2 * l.p - l.k) / l.s) + 1;
  const g: ConvGeometry = {
    channels: l.C,
    height: l.H,
    width: l.H,
    kernelH: l.k,
    kernelW: l.k,
    strideH: l.s,
    strideW: l.s,
    padH: l.p,
    padW: l.p,
    outH: out,
    outW: out,
  };
  const x = random(N * l.C * l.H * l.H, 1);
  const w = random(l.O * l.C * l.k * l.k, 2);
  const bias = random(l.O, 3);
  const y = new Float32Array(N * l.O * out * out);
  const gy = random(y.length, 4);
  const gx = new Float32Array(x.length);
  const gw = new Float32Array(w.length);
  const gb = new Float32Array(l.O);
  const fwd: ConvForwardArgs = {
    x,
    xOffset: 0,
    batch: N,
    w,
    wOffset: 0,
    outChannels: l.O,
    g,
    bias,
    biasOffset: 0,
    relu: true,
    out: y,
    outOffset: 0,
  };
  const bwd: ConvBackwardArgs = {
    x,
    xOffset: 0,
    batch: N,
    w,
    wOffset: 0,
    outChannels: l.O,
    g,
    gy,
    gyOffset: 0,
    y,
    yOffset: 0,
    gx: l.gx ? gx : null,
    gxOffset: 0,
    gw,
    gwOffset: 0,
    gb,
    gbOffset: 0,
  };
  const macs = N * l.O * out * out * l.C * l.k * l.k;
  const fwdGflop = (2 * macs / 1e9).toPrecision(3);
  const bwdGflop = ((l.gx ? 4 : 2) * macs / 1e9).toPrecision(3);
  for (
    const [pass, gflop, ref, fast] of [
      [
        "forward + bias + ReLU",
        fwdGflop,
        () => convForwardReference(fwd),
        () => wasmConvForward(fwd),
      ],
      ["backward", bwdGflop, () => convBackwardReference(bwd), () => wasmConvBackward(bwd)],
    ] as const
  ) {
    const group = `${l.name} ${pass}, batch ${N}`;
    Deno.bench({
      name: `${group}: reference [${gflop} GFLOP]`,
      group,
      baseline: true,
      n: 5,
      fn: ref,
    });
    Deno.bench({ name: `${group}: wasm`, group, ignore: !wasmAvailable, fn: fast });
  }
}
