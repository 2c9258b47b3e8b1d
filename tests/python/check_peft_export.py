#!/usr/bin/python3
"""Loads a gpt run's PEFT adapter and the base it points at with plain torch,
merges W + (lora_alpha / r) * B A by hand, runs GPT-2's forward pass written
from its equations, and matches lorafed's own logits (lorafed_peft_logits):
of the base, of the global model as the server evaluated it (the adapter
must be the whole global change: exported at full rank), and of the base
with the adapter installed as lorafed's clients install adapters.

    check_peft_export.py ADAPTER_DIR LOGITS.safetensors

Nothing of lorafed is used: safetensors files are read by hand (an 8-byte
little-endian header length, a JSON header, raw little-endian data), and the
base is found the way PEFT finds it, through the adapter's
base_model_name_or_path. Exits 1, saying why, on any mismatch.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

TOLERANCE = 1e-4  # max |logit difference|; float32 against float64 is ~1e-6 here
DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def fail(message):
    print("FAILED: " + message)
    sys.exit(1)


def read_safetensors(path):
    with open(path, "rb") as file:
        blob = file.read()
    (header_size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + header_size])
    data = blob[8 + header_size :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        dtype = np.dtype(DTYPES[entry["dtype"]]).newbyteorder("<")
        array = np.frombuffer(data[begin:end], dtype=dtype).reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.astype(array.dtype.newbyteorder("=")))
    return tensors, header.get("__metadata__", {})


def read_json(path):
    with open(path) as file:
        return json.load(file)


def merge(base, adapter, scale, fan_in_fan_out, transpose_square=True):
    """W + scale * B A per adapted module; transposed where the base stores
    weights in x out (fan_in_fan_out). transpose_square=False leaves square
    changes untransposed: a deliberately wrong merge, for the control below."""
    weights = dict(base)
    prefix = "base_model.model."
    for name in adapter:
        if not name.endswith(".lora_A.weight"):
            continue
        module = name[len(prefix) : -len(".lora_A.weight")]
        a = adapter[name].double()
        b = adapter[prefix + module + ".lora_B.weight"].double()
        delta = scale * (b @ a)  # out x in
        if fan_in_fan_out and (transpose_square or delta.shape[0] != delta.shape[1]):
            delta = delta.T
        weight = weights[module + ".weight"]
        if delta.shape != weight.shape:
            fail(f"{module}: B A is {tuple(delta.shape)}, the base weight {tuple(weight.shape)}")
        weights[module + ".weight"] = weight + delta
    return weights


def layer_norm(x, gain, bias, epsilon):
    mean = x.mean(-1, keepdim=True)
    variance = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(variance + epsilon) * gain + bias


def gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def conv1d(x, weights, name):
    """transformers' Conv1D: y = x W + b with W stored in x out."""
    return x @ weights[name + ".weight"] + weights[name + ".bias"]


def gpt2_logits(weights, config, tokens):
    """GPT2LMHeadModel's forward pass for one sequence (length x vocab)."""
    heads, width = config["n_head"], config["n_embd"]
    head_dim = width // heads
    epsilon = config["layer_norm_epsilon"]
    length = tokens.shape[0]
    w = lambda name: weights["transformer." + name]
    x = w("wte.weight")[tokens] + w("wpe.weight")[:length]
    hidden = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)
    for block in range(config["n_layer"]):
        h = f"transformer.h.{block}."
        a = layer_norm(x, weights[h + "ln_1.weight"], weights[h + "ln_1.bias"], epsilon)
        q, k, v = conv1d(a, weights, h + "attn.c_attn").split(width, dim=-1)
        q, k, v = (t.reshape(length, heads, head_dim).transpose(0, 1) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
        scores = scores.masked_fill(hidden, float("-inf"))
        attended = torch.softmax(scores, dim=-1) @ v  # heads x length x head_dim
        attended = attended.transpose(0, 1).reshape(length, width)
        x = x + conv1d(attended, weights, h + "attn.c_proj")
        m = layer_norm(x, weights[h + "ln_2.weight"], weights[h + "ln_2.bias"], epsilon)
        x = x + conv1d(gelu_new(conv1d(m, weights, h + "mlp.c_fc")), weights, h + "mlp.c_proj")
    x = layer_norm(x, w("ln_f.weight"), w("ln_f.bias"), epsilon)
    return x @ w("wte.weight").T  # the head is tied to the token embedding


def largest_difference(weights, config, logits, kind):
    """The largest |logit difference| from lorafed's `kind` logits over the sequences."""
    worst = 0.0
    index = 0
    while f"tokens_{index}" in logits:
        ours = gpt2_logits(weights, config, logits[f"tokens_{index}"])
        worst = max(worst, (ours - logits[f"{kind}_logits_{index}"].double()).abs().max().item())
        index += 1
    return worst


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    adapter_dir, logits_path = sys.argv[1], sys.argv[2]

    adapter_config = read_json(os.path.join(adapter_dir, "adapter_config.json"))
    if adapter_config.get("peft_type") != "LORA" or adapter_config.get("task_type") != "CAUSAL_LM":
        fail(f"peft_type {adapter_config.get('peft_type')}, task_type "
             f"{adapter_config.get('task_type')}: AutoPeftModelForCausalLM needs LORA, CAUSAL_LM")
    if adapter_config.get("use_rslora"):
        fail("use_rslora: the scale would be alpha / sqrt(r)")
    base_dir = adapter_config["base_model_name_or_path"]
    if not os.path.isabs(base_dir) or not os.path.isdir(base_dir):
        fail(f"base_model_name_or_path {base_dir!r} is not an absolute path to a folder")
    if not os.path.samefile(base_dir, os.path.join(adapter_dir, os.pardir, "base")):
        fail(f"base_model_name_or_path {base_dir!r} is not the run's own peft/base")
    base_config = read_json(os.path.join(base_dir, "config.json"))
    expected = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
                "activation_function": "gelu_new", "tie_word_embeddings": True}
    for key, value in expected.items():
        if base_config.get(key) != value:
            fail(f"config.json: {key} is {base_config.get(key)!r}, expected {value!r}")
    if adapter_config["fan_in_fan_out"] is not True:
        fail("fan_in_fan_out must be true: GPT-2's projections are Conv1D (weights in x out)")

    base, metadata = read_safetensors(os.path.join(base_dir, "model.safetensors"))
    if metadata.get("format") != "pt":
        fail("model.safetensors lacks the metadata format = pt that transformers requires")
    base = {name: tensor.double() for name, tensor in base.items()}
    adapter, _ = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    r, alpha = adapter_config["r"], adapter_config["lora_alpha"]
    adapted = {name[len("base_model.model.") : -len(".lora_A.weight")]
               for name in adapter if name.endswith(".lora_A.weight")}
    if adapted != set(adapter_config["target_modules"]):
        fail(f"target_modules {sorted(adapter_config['target_modules'])} are not the adapted "
             f"modules {sorted(adapted)}")
    for module in adapter_config["target_modules"]:
        a = adapter[f"base_model.model.{module}.lora_A.weight"]
        b = adapter[f"base_model.model.{module}.lora_B.weight"]
        fan_in, fan_out = base[module + ".weight"].shape  # Conv1D: in x out
        if tuple(a.shape) != (r, fan_in) or tuple(b.shape) != (fan_out, r):
            fail(f"{module}: lora_A {tuple(a.shape)}, lora_B {tuple(b.shape)}; "
                 f"PEFT stores r x in = {(r, fan_in)} and out x r = {(fan_out, r)}")
    logits, _ = read_safetensors(logits_path)

    base_error = largest_difference(base, base_config, logits, "base")
    merged = merge(base, adapter, alpha / r, True)
    global_error = largest_difference(merged, base_config, logits, "global")
    adapted_error = largest_difference(merged, base_config, logits, "adapted")
    print(f"largest |logit difference| from lorafed's (tolerance {TOLERANCE:g}): "
          f"base {base_error:.2e}; adapter merged against the global model the server "
          f"evaluated {global_error:.2e}, against the adapter installed in lorafed "
          f"{adapted_error:.2e}")
    if base_error > TOLERANCE:
        fail("the base's logits differ: the exported base or GPT-2's forward pass is not lorafed's")
    if global_error > TOLERANCE:
        fail("the merged adapter is not the run's global model (is it exported at full rank?)")
    if adapted_error > TOLERANCE:
        fail("the adapter merged as PEFT merges it differs from lorafed's LoRA forward pass")

    # Controls: the check must tell a wrong merge from the right one.
    controls = {
        "no adapter": base,
        "scale alpha instead of alpha / r": merge(base, adapter, alpha, True),
        "square changes not transposed": merge(base, adapter, alpha / r, True, False),
    }
    for label, weights in controls.items():
        error = largest_difference(weights, base_config, logits, "global")
        print(f"control, {label}: {error:.2e}")
        if error < 10 * TOLERANCE:
            fail(f"a merge with {label} matches too: the check cannot tell it apart")
    print("the PEFT export matches lorafed's forward pass")


if __name__ == "__main__":
    main()
