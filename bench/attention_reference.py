#!/usr/bin/env python3
"""Reference numbers for latentlab's attention blocks (src/models/attention.rs), from PyTorch.

Writes tests/fixtures/attention_reference.safetensors: fixed inputs, the weights of two
nn.MultiheadAttention modules (embed 16, 4 heads, no dropout; one self-attention, one
cross-attention with kdim = vdim = 12, which PyTorch keeps as separate q, k, v projections), their
outputs, and F.scaled_dot_product_attention on fixed q, k, v. Weights are stored under the names of
burn-nn's CrossAttention (query, key, value, output; PyTorch's [out, in] layout), which latentlab
loads with its PyTorch adapter.

    pip install torch safetensors numpy
    python3 bench/attention_reference.py
"""
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
EMBED, HEADS, CONTEXT = 16, 4, 12
query = torch.randn(2, 10, EMBED)
context = torch.randn(2, 5, CONTEXT)
out = {"input.query": query, "input.context": context}


def weights(mha, prefix, kdim):
    if mha._qkv_same_embed_dim:
        q, k, v = mha.in_proj_weight.chunk(3)
    else:
        q, k, v = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
    qb, kb, vb = mha.in_proj_bias.chunk(3)
    assert k.shape == (EMBED, kdim)
    for name, w, b in [("query", q, qb), ("key", k, kb), ("value", v, vb),
                       ("output", mha.out_proj.weight, mha.out_proj.bias)]:
        out[f"{prefix}.{name}.weight"] = w.detach().clone()
        out[f"{prefix}.{name}.bias"] = b.detach().clone()


with torch.no_grad():
    for prefix, kdim, keys in [("self_attention", EMBED, query), ("cross_attention", CONTEXT, context)]:
        mha = torch.nn.MultiheadAttention(EMBED, HEADS, dropout=0.0, bias=True, batch_first=True,
                                          kdim=kdim, vdim=kdim)
        # PyTorch initializes biases at zero; random ones test that they are added.
        torch.nn.init.normal_(mha.in_proj_bias, std=0.5)
        torch.nn.init.normal_(mha.out_proj.bias, std=0.5)
        weights(mha, prefix, kdim)
        result, _ = mha(query, keys, keys, need_weights=False)
        out[f"output.{prefix}"] = result

    q, k, v = torch.randn(2, HEADS, 10, 4), torch.randn(2, HEADS, 7, 4), torch.randn(2, HEADS, 7, 4)
    out.update({"sdpa.q": q, "sdpa.k": k, "sdpa.v": v,
                "sdpa.output": F.scaled_dot_product_attention(q, k, v)})

save_file({k: v.contiguous().float() for k, v in out.items()},
          "tests/fixtures/attention_reference.safetensors")
print(f"wrote tests/fixtures/attention_reference.safetensors ({len(out)} tensors), torch {torch.__version__}")
