#!/usr/bin/python3
"""The same LoRA training step `bench_llama train` times, in PyTorch eager
(Debian's python3-torch), for the side-by-side in docs/benchmarks.md.

    llama_training.py --shape default|smollm2-135m [--steps 10] [--batch 8]
                      [--length 128] [--rank 8] [--threads 1]

The model is LlamaForCausalLM as transformers' eager implementation computes
it (nn.Linear projections, RMSNorm, rotary embeddings from a cos/sin table,
grouped key/value heads repeated, softmax attention with a causal mask,
SwiGLU), with PEFT's LoRA (x -> lora_B(lora_A(x)) * alpha / r) on q_proj and
v_proj, random weights, AdamW on the adapter only. Written here from the
equations: neither lorafed nor transformers is used.
"""

import argparse
import math
import resource
import time

import torch
from torch import nn

SHAPES = {
    "default": dict(vocab=1024, hidden=128, inter=384, layers=4, heads=4, kv=2, head_dim=32,
                    theta=10000.0, tied=True),
    "smollm2-135m": dict(vocab=49152, hidden=576, inter=1536, layers=30, heads=9, kv=3,
                         head_dim=64, theta=100000.0, tied=True),
}


class LoraLinear(nn.Module):
    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(base.in_features, rank, bias=False)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False)
        nn.init.normal_(self.lora_B.weight, std=0.02)  # nonzero, so gradients reach A
        self.scaling = alpha / rank

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling


class RMSNorm(nn.Module):
    def __init__(self, size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Layer(nn.Module):
    def __init__(self, s, rank):
        super().__init__()
        h, d = s["hidden"], s["head_dim"]
        self.s = s
        self.input_layernorm = RMSNorm(h, 1e-5)
        self.q_proj = LoraLinear(nn.Linear(h, s["heads"] * d, bias=False), rank, 16)
        self.k_proj = nn.Linear(h, s["kv"] * d, bias=False)
        self.v_proj = LoraLinear(nn.Linear(h, s["kv"] * d, bias=False), rank, 16)
        self.o_proj = nn.Linear(s["heads"] * d, h, bias=False)
        self.post_attention_layernorm = RMSNorm(h, 1e-5)
        self.gate_proj = nn.Linear(h, s["inter"], bias=False)
        self.up_proj = nn.Linear(h, s["inter"], bias=False)
        self.down_proj = nn.Linear(s["inter"], h, bias=False)

    def forward(self, x, cos, sin, mask):
        s = self.s
        batch, length, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(batch, length, s["heads"], s["head_dim"]).transpose(1, 2)
        k = self.k_proj(h).view(batch, length, s["kv"], s["head_dim"]).transpose(1, 2)
        v = self.v_proj(h).view(batch, length, s["kv"], s["head_dim"]).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        group = s["heads"] // s["kv"]
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        scores = q @ k.transpose(2, 3) / math.sqrt(s["head_dim"]) + mask
        attended = torch.softmax(scores, dim=-1) @ v
        x = x + self.o_proj(attended.transpose(1, 2).reshape(batch, length, -1))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(nn.functional.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, s, rank):
        super().__init__()
        self.s = s
        self.embed_tokens = nn.Embedding(s["vocab"], s["hidden"])
        self.layers = nn.ModuleList(Layer(s, rank) for _ in range(s["layers"]))
        self.norm = RMSNorm(s["hidden"], 1e-5)
        self.lm_head = None if s["tied"] else nn.Linear(s["hidden"], s["vocab"], bias=False)

    def forward(self, tokens):
        s = self.s
        length = tokens.shape[1]
        inverse = 1.0 / (s["theta"] ** (torch.arange(0, s["head_dim"], 2).float() / s["head_dim"]))
        angles = torch.outer(torch.arange(length).float(), inverse)
        cos = torch.cat((angles, angles), -1).cos()
        sin = torch.cat((angles, angles), -1).sin()
        mask = torch.full((length, length), float("-inf")).triu(1)
        x = self.embed_tokens(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        x = self.norm(x)
        head = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return x @ head.T


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="default", choices=sorted(SHAPES))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)

    s = SHAPES[args.shape]
    model = Llama(s, args.rank)
    base_count = 0
    trained = []
    for name, parameter in model.named_parameters():
        if "lora_" in name:
            trained.append(parameter)
        else:
            parameter.requires_grad_(False)
            base_count += parameter.numel()
            if not name.endswith("norm.weight"):
                nn.init.normal_(parameter, std=0.02)
    optimizer = torch.optim.AdamW(trained, lr=1e-4)
    tokens = torch.randint(s["vocab"], (args.batch, args.length + 1))
    inputs, labels = tokens[:, :-1], tokens[:, 1:]

    def step():
        optimizer.zero_grad()
        logits = model(inputs)
        loss = nn.functional.cross_entropy(logits.reshape(-1, s["vocab"]), labels.reshape(-1))
        loss.backward()
        optimizer.step()

    for _ in range(2):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("pytorch eager: %.1fM parameters, LoRA r=%d on q_proj and v_proj, batch %d × %d tokens, "
          "%d threads: %.0f tokens/s, %.1f ms/step, peak RSS %.0f MiB"
          % (base_count / 1e6, args.rank, args.batch, args.length, torch.get_num_threads(),
             args.batch * args.length * args.steps / seconds, 1000 * seconds / args.steps, peak))


if __name__ == "__main__":
    main()
