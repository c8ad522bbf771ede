#!/usr/bin/env python3
"""PyTorch reference for tapegrad's first-names configs (names-mlp, names-gpt), on CPU.

Not a test dependency: it produces the figures in bench/names_reference.md. It trains on exactly
the split of data/names.ts, in the batch order of tapegrad's DataLoader, both read from
bench/names_split.ts (run through `deno`), so the same recipe can be replayed in tapegrad.

    /usr/bin/python3 bench/names_torch.py --config gpt --seed 1
    /usr/bin/python3 bench/names_torch.py --config mlp --seed 1 --threads 2

Needs Debian's python3-torch (1.13) and libopenblas0-pthread (without it torch gets the
reference BLAS). Prints one JSON line per run with the validation loss and the throughput.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The recipe (bench/names_reference.md describes each value).
RECIPES = {
    "mlp": dict(
        steps=1000, batch_names=64, block_size=3, emb=16, hidden=256,
        max_lr=1e-2, weight_decay=0.01, betas=(0.9, 0.99), eps=1e-8,
        pct_start=0.3, div_factor=25.0, final_div_factor=1e4,
    ),
    "gpt": dict(
        steps=1000, batch_names=64, block_size=16, width=64, blocks=4, heads=4, mlp=256,
        max_lr=3e-3, weight_decay=0.01, betas=(0.9, 0.99), eps=1e-8,
        pct_start=0.3, div_factor=25.0, final_div_factor=1e4,
    ),
}
WARMUP_STEPS = 50  # steps excluded from the throughput timing


def load_split(steps, batch_size, batch_seed, split_file=None):
    """The corpus split and batch order from bench/names_split.ts (or a saved copy of its output)."""
    if split_file:
        with open(split_file) as f:
            data = json.load(f)
        if data.get("batchSeed") != batch_seed or len(data.get("batches", [])) < steps:
            sys.exit(f"{split_file}: made for another batch seed or fewer steps")
        return data
    cmd = ["deno", "run", "--allow-read", "--allow-env", os.path.join(ROOT, "bench/names_split.ts"),
           "--steps", str(steps), "--batch-size", str(batch_size), "--batch-seed", str(batch_seed)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT).stdout)


def encode_contexts(names, stoi, block_size):
    """Bengio pairs: each name padded at the start with boundary tokens, ended by one (as
    encodeContexts in data/names.ts). Returns contexts [n, block], targets [n], offsets [names+1]."""
    xs, ys, offsets = [], [], [0]
    for name in names:
        ctx = [0] * block_size
        for ch in list(name) + ["."]:
            t = stoi[ch]
            xs.append(ctx)
            ys.append(t)
            ctx = ctx[1:] + [t]
        offsets.append(len(ys))
    return torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long), offsets


def encode_sequences(names, stoi, block_size):
    """Transformer rows [0, c1..cn, 0, pad] (as encodeSequences in data/names.ts): inputs padded
    with 0, targets with -1."""
    x = torch.zeros(len(names), block_size, dtype=torch.long)
    y = torch.full((len(names), block_size), -1, dtype=torch.long)
    for i, name in enumerate(names):
        tokens = [stoi[ch] for ch in name]
        assert len(tokens) + 1 <= block_size, name
        x[i, 1:len(tokens) + 1] = torch.tensor(tokens)
        y[i, :len(tokens)] = torch.tensor(tokens)
        y[i, len(tokens)] = 0
    return x, y


class BengioMLP(nn.Module):
    """Bengio et al. 2003: embed each of `block` previous tokens, concatenate, tanh layer, logits."""

    def __init__(self, vocab, block, emb, hidden):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.hidden = nn.Linear(block * emb, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, ctx):  # ctx [n, block]
        e = self.emb(ctx).flatten(1)
        return self.out(torch.tanh(self.hidden(e)))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln1 x), then x + mlp(ln2 x)."""

    def __init__(self, width, heads, mlp):
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=0.0, batch_first=True)
        self.ln2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, mlp)
        self.fc2 = nn.Linear(mlp, width)

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class CharGPT(nn.Module):
    """Token + learned position embedding, pre-LN causal blocks, final LayerNorm, linear head."""

    def __init__(self, vocab, block, width, blocks, heads, mlp):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(block, width)
        self.blocks = nn.ModuleList([Block(width, heads, mlp) for _ in range(blocks)])
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)
        # True above the diagonal: position t may not attend to t' > t.
        self.register_buffer("mask", torch.triu(torch.ones(block, block, dtype=torch.bool), 1))

    def forward(self, idx):  # idx [n, T]
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t))
        for blk in self.blocks:
            x = blk(x, self.mask[:t, :t])
        return self.head(self.ln_f(x))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", choices=sorted(RECIPES), required=True)
    p.add_argument("--seed", type=int, default=1, help="torch.manual_seed and the batch seed")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    p.add_argument("--split-file", help="saved output of names_split.ts (else deno runs it)")
    p.add_argument("--lr", type=float, help="override max_lr")
    p.add_argument("--weight-decay", type=float, help="override weight_decay")
    p.add_argument("--log-every", type=int, default=0)
    args = p.parse_args()
    r = dict(RECIPES[args.config])
    if args.lr is not None:
        r["max_lr"] = args.lr
    if args.weight_decay is not None:
        r["weight_decay"] = args.weight_decay
    if args.threads:
        torch.set_num_threads(args.threads)

    data = load_split(r["steps"], r["batch_names"], args.seed, args.split_file)
    stoi = {ch: i for i, ch in enumerate(data["vocab"])}
    vocab = len(data["vocab"])
    train, val = data["train"], data["validation"]

    torch.manual_seed(args.seed)
    if args.config == "mlp":
        model = BengioMLP(vocab, r["block_size"], r["emb"], r["hidden"])
        tx, ty, toff = encode_contexts(train, stoi, r["block_size"])
        vx, vy, _ = encode_contexts(val, stoi, r["block_size"])

        def batch(names):  # all pairs of the step's names
            idx = torch.cat([torch.arange(toff[i], toff[i + 1]) for i in names])
            return tx[idx], ty[idx]
    else:
        model = CharGPT(vocab, r["block_size"], r["width"], r["blocks"], r["heads"], r["mlp"])
        tx, ty = encode_sequences(train, stoi, r["block_size"])
        vx, vy = encode_sequences(val, stoi, r["block_size"])

        def batch(names):
            idx = torch.tensor(names)
            return tx[idx], ty[idx]

    params = sum(q.numel() for q in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=r["max_lr"], betas=r["betas"], eps=r["eps"],
                            weight_decay=r["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=r["max_lr"], total_steps=r["steps"], pct_start=r["pct_start"],
        anneal_strategy="cos", cycle_momentum=False, div_factor=r["div_factor"],
        final_div_factor=r["final_div_factor"])

    def loss_of(x, y):
        logits = model(x)
        return F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1), ignore_index=-1)

    chars = 0
    t0 = None
    model.train()
    for step in range(r["steps"]):
        if step == WARMUP_STEPS:
            t0 = time.perf_counter()
            chars = 0
        x, y = batch(data["batches"][step])
        loss = loss_of(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        chars += int((y >= 0).sum())
        if args.log_every and (step % args.log_every == 0 or step == r["steps"] - 1):
            print(f"step {step} loss {loss.item():.4f} lr {opt.param_groups[0]['lr']:.2e}",
                  file=sys.stderr)
    seconds = time.perf_counter() - t0

    model.eval()
    with torch.no_grad():
        logits = model(vx).reshape(-1, vocab)
        target = vy.reshape(-1)
        val_sum = F.cross_entropy(logits, target, ignore_index=-1, reduction="sum").item()
        val_chars = int((target >= 0).sum())
        # Training loss of the final weights over the whole training split, for reference.
        tl = model(tx).reshape(-1, vocab)
        train_loss = F.cross_entropy(tl, ty.reshape(-1), ignore_index=-1).item()

    print(json.dumps(dict(
        config=args.config, seed=args.seed, params=params,
        val_loss=round(val_sum / val_chars, 4), val_chars=val_chars,
        train_loss=round(train_loss, 4),
        chars_per_s=round(chars / seconds), timed_steps=r["steps"] - WARMUP_STEPS,
        ms_per_step=round(1000 * seconds / (r["steps"] - WARMUP_STEPS), 2),
        threads=torch.get_num_threads(), torch=torch.__version__,
        max_lr=r["max_lr"], weight_decay=r["weight_decay"],
    )))


if __name__ == "__main__":
    main()
