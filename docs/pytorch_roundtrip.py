#!/usr/bin/env python3
"""tapegrad <-> PyTorch round trip, end to end (the README's Interoperability section).

    /usr/bin/python3 docs/pytorch_roundtrip.py [--dir /tmp/tapegrad-roundtrip]

1. tapegrad -> PyTorch: the shipped models/mnist-mlp.safetensors and mnist-alexnet.safetensors
   load with strict load_state_dict into the PyTorch modules their doc comments give; on the
   10 000 MNIST test images (normalised by tapegrad, docs/pytorch_roundtrip.ts prepare) both
   frameworks' logits and test errors are compared.
2. PyTorch -> tapegrad -> PyTorch: a net with a BatchNorm1d is trained a few steps in PyTorch, its
   state dict (num_batches_tracked is int64) saved as safetensors, loaded into tapegrad
   (docs/pytorch_roundtrip.ts check), whose outputs are compared with PyTorch's; tapegrad saves
   it back and PyTorch loads that file and compares it with the original state dict.

Needs only torch (Debian's python3-torch); safetensors files are read and written here by a
few lines of code, so the `safetensors` package is not needed. Never a test dependency.
"""

import argparse
import json
import os
import struct
import subprocess
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "F64": torch.float64, "I64": torch.int64, "I32": torch.int32, "BOOL": torch.bool,
          "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16}
NAMES = {v: k for k, v in DTYPES.items()}


def load_file(path):
    """A safetensors file as {name: tensor} (the format: u64 header size, JSON header, data)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    data = blob[8 + n:]
    out = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        raw = bytearray(data[begin:end])
        t = torch.frombuffer(raw, dtype=DTYPES[entry["dtype"]]) if raw else torch.empty(0)
        out[name] = t.reshape(entry["shape"]).clone()
    return out


def save_file(tensors, path):
    """Writes {name: tensor} as safetensors (sorted names, 8-byte aligned data)."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        raw = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 512)
        self.fc2 = nn.Linear(512, 1024)
        self.fc3 = nn.Linear(1024, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class AlexNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=4, stride=2)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(64, 128, kernel_size=3, stride=2, padding=1)
        self.dropout = nn.Dropout(0.5)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        x = self.dropout(torch.flatten(x, 1))
        return self.fc2(F.relu(self.fc1(x)))


def deno(*args):
    subprocess.run(["deno", "run", "--allow-read", "--allow-write", "--allow-env",
                    os.path.join(ROOT, "docs", "pytorch_roundtrip.ts"), *args], check=True, cwd=ROOT)


def bn_net():
    return nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 5))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="/tmp/tapegrad-roundtrip")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # interleave in order with deno's output
    os.makedirs(args.dir, exist_ok=True)
    torch.set_grad_enabled(False)

    print("== 1. tapegrad checkpoints in PyTorch")
    deno("prepare", args.dir)
    test = load_file(os.path.join(args.dir, "mnist_test.safetensors"))
    images, labels = test["images"], test["labels"]
    for name, cls in [("mlp", MLP), ("alexnet", AlexNet)]:
        model = cls()
        state = load_file(os.path.join(ROOT, "models", f"mnist-{name}.safetensors"))
        print(f"pytorch   {name:7} load_state_dict(strict=True): {model.load_state_dict(state)}")
        model.eval()
        logits = model(images)
        ours = load_file(os.path.join(args.dir, f"{name}_tapegrad_logits.safetensors"))["logits"]
        errors = int((logits.argmax(1) != labels).sum())
        disagree = int((logits.argmax(1) != ours.argmax(1)).sum())
        diff = float((logits - ours).abs().max())
        print(f"pytorch   {name:7} test errors: {errors} of {len(labels)}; max abs logit diff vs "
              f"tapegrad {diff:.2e}; predictions that differ: {disagree}")

    print("== 2. a PyTorch state dict with BatchNorm in tapegrad, and back")
    torch.manual_seed(0)
    net = bn_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    with torch.enable_grad():
        for _ in range(7):
            x = torch.randn(16, 20) * 2 + 1
            loss = net(x).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()
    state = net.state_dict()
    print(f"pytorch   1.num_batches_tracked: {state['1.num_batches_tracked'].dtype} = "
          f"{int(state['1.num_batches_tracked'])}")
    save_file(state, os.path.join(args.dir, "torch_bn.safetensors"))
    x = torch.randn(64, 20) * 2 + 1
    save_file({"x": x, "y": net(x)}, os.path.join(args.dir, "torch_bn_io.safetensors"))
    deno("check", args.dir)
    back = load_file(os.path.join(args.dir, "tapegrad_bn.safetensors"))
    again = bn_net()
    print(f"pytorch   load_state_dict(tapegrad's file, strict=True): {again.load_state_dict(back)}")
    again.eval()
    same = all(torch.equal(state[k], back[k]) and state[k].dtype == back[k].dtype for k in state)
    print(f"pytorch   every tensor equal to the original, dtype included (num_batches_tracked "
          f"{back['1.num_batches_tracked'].dtype}): {same}")
    print(f"pytorch   outputs of the reloaded net vs the original: max abs diff "
          f"{float((again(x) - net(x)).abs().max()):.2e}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
