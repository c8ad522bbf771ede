#!/usr/bin/env python3
"""PyTorch beside tapegrad in `deno task bench:peers`: the same models, batches and protocol.

The models are tapegrad's MLP (784-512-1024-10, ReLU) and AlexNet (the three convolutions and
two linear layers of nn/models/alexnet.ts); a training step is forward, softmax cross-entropy,
backward and SGD with momentum 0.9 at lr 0.01 on one fixed random batch, and inference is a
forward pass without gradients at batch 1 and at the training batch.

bench/peers.ts runs this with `--serve`: it prints one JSON line describing torch, then answers
each request line {"task": "mlp train step", "threads": 1, "round_s": 0.6} with one timing
round of that task, {"seconds": ...} (an untimed warm-up round before a task's first round on a
thread count), so peers.ts can alternate PyTorch's rounds with tapegrad's. Run alone it measures
every task itself: the median over `--rounds` rounds of at least `--round-s` seconds.

    /usr/bin/python3 bench/peers_torch.py --threads 2 --batch 128 --round-s 0.6 --rounds 5

Needs Debian's python3-torch and libopenblas0-pthread (without OpenBLAS, torch gets the
reference BLAS and is ~30x slower). Exits 3, printing why, when torch cannot be imported.
"""

import argparse
import json
import os
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as error:  # bench/peers.ts reports this line and how to install torch
    print(json.dumps({"error": f"cannot import torch: {error}"}))
    sys.exit(3)


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
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def one_round(fn, round_s):
    """Seconds per call over one round of at least round_s seconds (at least one call)."""
    calls = 0
    t0 = time.perf_counter()
    t = t0
    while calls == 0 or t - t0 < round_s:
        fn()
        calls += 1
        t = time.perf_counter()
    return (t - t0) / calls


def measure(fn, rounds, round_s):
    """Median seconds per call: an untimed round, then rounds of at least round_s seconds."""
    one_round(fn, round_s)
    per = []
    for _ in range(rounds):
        per.append(one_round(fn, round_s))
        if per[-1] > 4.0:  # a very slow step (seconds) gets one round
            break
    return statistics.median(per)


def tasks(batch):
    """Every task by name ("mlp train step", "mlp forward 1", ...): a function to time."""
    torch.manual_seed(1)
    xb = torch.randn(batch, 1, 28, 28)
    x1 = torch.randn(1, 1, 28, 28)
    yb = torch.randint(0, 10, (batch,))
    out = {}
    for name in ("mlp", "alexnet"):
        model = MLP() if name == "mlp" else AlexNet()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step(model=model, optimizer=optimizer):
            optimizer.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()

        step()  # allocates the gradients, as peers.ts does
        out[f"{name} train step"] = step
        for x, b in ((x1, 1), (xb, batch)):
            def forward(model=model, x=x):
                with torch.no_grad():
                    model(x)

            out[f"{name} forward {b}"] = forward
        # The Linear layers in int8, as tapegrad's quantizeDynamic does (CPU inference only).
        int8 = torch.ao.quantization.quantize_dynamic(
            (MLP() if name == "mlp" else AlexNet()).eval(), {nn.Linear}, dtype=torch.qint8)
        for x, b in ((x1, 1), (xb, batch)):
            def forward_int8(model=int8, x=x):
                with torch.no_grad():
                    model(x)

            out[f"{name} int8 forward {b}"] = forward_int8
    return out


def serve(batch):
    """Answers timing requests on stdin, one JSON line each (see the module comment)."""
    print(json.dumps({"name": f"pytorch {torch.__version__}", "blas": blas_info(),
                      "cpu": cpu_vector(), "default_threads": torch.get_num_threads()}),
          flush=True)
    table = tasks(batch)
    warm = set()
    for line in sys.stdin:
        request = json.loads(line)
        fn = table[request["task"]]
        torch.set_num_threads(request["threads"])
        key = (request["task"], request["threads"])
        if key not in warm:  # an untimed round first, as on the tapegrad side
            one_round(fn, request["round_s"])
            warm.add(key)
        print(json.dumps({"seconds": one_round(fn, request["round_s"])}), flush=True)


def blas_info():
    """The BLAS library torch has loaded (Debian's torch takes whatever libblas.so.3 is)."""
    torch.ones(64, 64) @ torch.ones(64, 64)  # makes sure the library is loaded
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "blas" in os.path.basename(line.split()[-1])}
        if paths:
            return ", ".join(sorted(p for p in paths if p.startswith("/")))
    except OSError:
        pass
    for part in torch.__config__.show().replace("\n", ",").split(","):
        part = part.strip()
        if part.startswith("BLAS_INFO="):
            return part.split("=", 1)[1]
    return "unknown"


def cpu_vector():
    """The widest x86 vector extension /proc/cpuinfo lists (the OS view of the CPU)."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((l.split(":", 1)[1].split() for l in info if l.startswith("flags")), [])
    except OSError:
        return ""
    return "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--round-s", type=float, default=0.6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help="answer timing requests on stdin")
    args = parser.parse_args()
    if args.serve:
        serve(args.batch)
        return
    torch.set_num_threads(args.threads)
    rows = [{"task": task, "seconds": measure(fn, args.rounds, args.round_s)}
            for task, fn in tasks(args.batch).items()]
    print(json.dumps({
        "name": f"pytorch {torch.__version__} ({args.threads} threads)",
        "blas": blas_info(),
        "cpu": cpu_vector(),
        "rows": rows,
    }))


if __name__ == "__main__":
    main()
