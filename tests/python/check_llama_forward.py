#!/usr/bin/python3
"""Recomputes the logits of the checkpoints lorafed_llama_logits wrote with
plain torch in float64, from the equations of LlamaForCausalLM (and of
Qwen2ForCausalLM) as transformers defines them, and matches lorafed's own.

    check_llama_forward.py OUT_DIR

Per variant folder: config.json and model.safetensors (the checkpoint) and
expected.safetensors (tokens, lorafed's logits of the base and of the base
with the adapter whose factors it holds). Nothing of lorafed is used:
safetensors files are read by hand (check_peft_export.read_safetensors).
Exits 1, saying why, on any mismatch.
"""

import json
import math
import os
import sys

import torch

from check_peft_export import fail, read_json, read_safetensors

TOLERANCE = 1e-5  # max |logit difference|; float32 against float64


def inverse_frequencies(config):
    """theta_j = rope_theta ** (-2j / head_dim), then the configured scaling."""
    dim = config["head_dim"]
    inverse = torch.tensor(
        [1.0 / config["rope_theta"] ** (2 * j / dim) for j in range(dim // 2)],
        dtype=torch.float64,
    )
    scaling = config.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        return inverse / scaling["factor"]
    if kind == "llama3":
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        context = scaling["original_max_position_embeddings"]
        scaled = []
        for f in inverse.tolist():
            wavelength = 2 * math.pi / f
            if wavelength < context / high:
                scaled.append(f)
            elif wavelength > context / low:
                scaled.append(f / factor)
            else:
                smooth = (context / wavelength - low) / (high - low)
                scaled.append((1 - smooth) * f / factor + smooth * f)
        return torch.tensor(scaled, dtype=torch.float64)
    return inverse


def rms_norm(x, gain, epsilon):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + epsilon) * gain


def rotate(x, cos, sin):
    """x * cos + rotate_half(x) * sin, rotate_half(x1, x2) = (-x2, x1)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def llama_logits(weights, config, tokens, adapter, alpha):
    def linear(x, name):
        y = x @ weights[name + ".weight"].T
        if name + ".bias" in weights:
            y = y + weights[name + ".bias"]
        if name in adapter:
            a, b = adapter[name]
            y = y + (alpha / a.shape[0]) * ((x @ a.T) @ b.T)
        return y

    heads = config["num_attention_heads"]
    kv_heads = config["num_key_value_heads"]
    dim = config["head_dim"]
    eps = config["rms_norm_eps"]
    batch, length = tokens.shape
    angles = torch.outer(torch.arange(length, dtype=torch.float64), inverse_frequencies(config))
    cos = torch.cat([angles, angles], -1).cos()
    sin = torch.cat([angles, angles], -1).sin()
    future = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)

    x = weights["model.embed_tokens.weight"][tokens]
    for i in range(config["num_hidden_layers"]):
        p = "model.layers.%d." % i
        h = rms_norm(x, weights[p + "input_layernorm.weight"], eps)
        q = linear(h, p + "self_attn.q_proj").view(batch, length, heads, dim).transpose(1, 2)
        k = linear(h, p + "self_attn.k_proj").view(batch, length, kv_heads, dim).transpose(1, 2)
        v = linear(h, p + "self_attn.v_proj").view(batch, length, kv_heads, dim).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        # Query head h reads key/value head h // (heads / kv_heads).
        group = heads // kv_heads
        k = torch.stack([k[:, head // group] for head in range(heads)], dim=1)
        v = torch.stack([v[:, head // group] for head in range(heads)], dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(dim)
        scores = scores.masked_fill(future, float("-inf"))
        attended = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(batch, length, -1)
        x = x + linear(attended, p + "self_attn.o_proj")
        h = rms_norm(x, weights[p + "post_attention_layernorm.weight"], eps)
        gate = linear(h, p + "mlp.gate_proj")
        x = x + linear(gate * torch.sigmoid(gate) * linear(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = rms_norm(x, weights["model.norm.weight"], eps)
    head = weights["model.embed_tokens.weight"] if config["tie_word_embeddings"] else weights["lm_head.weight"]
    return x @ head.T


def check_variant(folder):
    config = read_json(os.path.join(folder, "config.json"))
    weights, _ = read_safetensors(os.path.join(folder, "model.safetensors"))
    weights = {name: tensor.double() for name, tensor in weights.items()}
    expected, metadata = read_safetensors(os.path.join(folder, "expected.safetensors"))
    if config["model_type"] == "qwen2" and any(".o_proj.bias" in name for name in weights):
        fail(folder + ": a Qwen2 checkpoint with an o_proj bias")
    adapter = {}
    for name in expected:
        if name.endswith(".lora_A"):
            module = name[: -len(".lora_A")]
            adapter[module] = (expected[name].double(), expected[module + ".lora_B"].double())
    tokens = expected["tokens"]
    alpha = float(metadata["lora_alpha"])
    worst = 0.0
    for kind, used in (("base", {}), ("adapted", adapter)):
        ours = llama_logits(weights, config, tokens, used, alpha)
        theirs = expected["logits_" + kind].double()
        difference = (ours - theirs).abs().max().item()
        print("%s, %s: max |logit difference| %.2e (logits up to %.2f)" % (os.path.basename(folder), kind, difference, ours.abs().max().item()))
        worst = max(worst, difference)
    # The adapter must change the logits, or matching them would prove nothing.
    change = (expected["logits_adapted"] - expected["logits_base"]).abs().max().item()
    if change < 1e-2:
        fail(folder + ": the adapter barely changes the logits (%.2e)" % change)
    return worst


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    root = sys.argv[1]
    variants = sorted(os.listdir(root))
    if len(variants) < 3:
        fail("expected three variants in " + root + ", found " + str(variants))
    worst = max(check_variant(os.path.join(root, variant)) for variant in variants)
    if worst > TOLERANCE:
        fail("lorafed's llama logits differ from plain torch by %.2e (tolerance %.0e)" % (worst, TOLERANCE))
    print("lorafed's llama forward pass matches plain torch (worst %.2e)" % worst)


if __name__ == "__main__":
    main()
