#!/usr/bin/env python3
"""Writes small torch.save checkpoints for the Swift TorchCheckpoint tests.

Run with the torch venv:  .deps/torch-venv/bin/python scripts/make_pth_fixture.py
Output: Tests/ModelsTests/Resources/torch_checkpoints/
  state_dict.pth       an nn.Module state_dict (OrderedDict with _metadata) plus tensors of every common dtype,
                       a transposed (non-contiguous) view, views sharing one storage at offsets, a 0-d and an
                       empty tensor (pickle protocol 2, the torch.save default)
  nested_p4.pth        {"epoch", "config", "state_dict": {...}, "head": {"p": Parameter}} with pickle protocol 4
                       (FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL)
  legacy.pth           the same state_dict in the legacy (pre-1.6, non-zip) stream format
  deflated.pth         state_dict.pth re-zipped with deflate (the reader must refuse it clearly)
  quality_hub.pth      the openclip fixture's tiny DINOv2Net (quality_head.safetensors) renamed to the torch-hub
                       DINOv2 layout (fused attn.qkv, ls1.gamma, ...) as the validator's later quality_scorer.pth
  expected.safetensors every tensor above under its flattened key, contiguous

A format fixture: every value is a random draw, an exact cast (half, bfloat16, double of the draws) or an exact copy
(arange * 0.5, torch.cat of the quality head's tensors), and the tests compare exact values, so there is no floating
arithmetic whose rounding could depend on the CPU and no float64 reference is needed.
"""
import os
import zipfile
from collections import OrderedDict

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "ModelsTests", "Resources", "torch_checkpoints")


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.norm = torch.nn.LayerNorm(4)
        self.bn = torch.nn.BatchNorm1d(4)   # brings an int64 num_batches_tracked
        self.head = torch.nn.Linear(4, 2, bias=False)


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    model = Tiny()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    state = model.state_dict()
    base = torch.arange(24, dtype=torch.float32) * 0.5
    state["extra.half"] = torch.randn(3, 5, generator=g).half()
    state["extra.bf16"] = torch.randn(2, 7, generator=g).bfloat16()
    state["extra.double"] = torch.randn(4, generator=g).double()
    state["extra.int32"] = torch.arange(-3, 3, dtype=torch.int32)
    state["extra.uint8"] = torch.arange(250, 256, dtype=torch.uint8)
    state["extra.bool"] = torch.tensor([True, False, True])
    state["extra.transposed"] = torch.randn(3, 4, generator=g).t()          # strides (1, 4)
    state["extra.shared_base"] = base.view(4, 6)
    state["extra.shared_slice"] = base[5:11]                                # storage offset 5
    state["extra.shared_column"] = base.view(4, 6)[:, 2]                    # offset 2, stride 6
    state["extra.scalar"] = torch.tensor(3.25)
    state["extra.empty"] = torch.zeros(0, 3)
    state["extra.big_int"] = torch.tensor([2**40, -(2**35)], dtype=torch.int64)
    torch.save(state, os.path.join(OUT, "state_dict.pth"))
    torch.save(state, os.path.join(OUT, "legacy.pth"), _use_new_zipfile_serialization=False)

    nested = {
        "epoch": 12,
        "lr": 0.125,
        "config": {"name": "tiny", "sizes": [1, 2, 3], "flag": True, "nothing": None},
        "state_dict": OrderedDict((k, v) for k, v in state.items() if k.startswith("conv") or k.startswith("head")),
        "head": {"p": torch.nn.Parameter(torch.randn(2, 2, generator=g))},
    }
    torch.save(nested, os.path.join(OUT, "nested_p4.pth"), pickle_protocol=4)

    with zipfile.ZipFile(os.path.join(OUT, "state_dict.pth")) as src, \
            zipfile.ZipFile(os.path.join(OUT, "deflated.pth"), "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))

    expected = {k: v.detach().contiguous().clone() for k, v in state.items()}
    for k, v in nested["state_dict"].items():
        expected["nested.state_dict." + k] = v.detach().contiguous().clone()
    expected["nested.head.p"] = nested["head"]["p"].detach().contiguous().clone()
    save_file(expected, os.path.join(OUT, "expected.safetensors"))
    write_quality_hub()
    print("wrote", sorted(os.listdir(OUT)))


def write_quality_hub():
    """HF Dinov2Model names -> facebookresearch/dinov2 hub names, as torch.save(DINOv2Net(hub backbone).state_dict())."""
    from safetensors.torch import load_file
    fixture = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fixtures", "openclip", "quality_head.safetensors")
    if not os.path.exists(fixture):
        fixture = "/work/shared/fixtures/openclip/quality_head.safetensors"
    hf = load_file(fixture)
    hub = OrderedDict()
    hub["backbone.cls_token"] = hf["backbone.embeddings.cls_token"]
    hub["backbone.pos_embed"] = hf["backbone.embeddings.position_embeddings"]
    hub["backbone.mask_token"] = hf["backbone.embeddings.mask_token"]
    hub["backbone.patch_embed.proj.weight"] = hf["backbone.embeddings.patch_embeddings.projection.weight"]
    hub["backbone.patch_embed.proj.bias"] = hf["backbone.embeddings.patch_embeddings.projection.bias"]
    layers = sorted({int(k.split(".")[3]) for k in hf if k.startswith("backbone.encoder.layer.")})
    for i in layers:
        src, dst = f"backbone.encoder.layer.{i}.", f"backbone.blocks.{i}."
        hub[dst + "norm1.weight"] = hf[src + "norm1.weight"]
        hub[dst + "norm1.bias"] = hf[src + "norm1.bias"]
        for part in ("weight", "bias"):
            hub[dst + "attn.qkv." + part] = torch.cat([hf[src + f"attention.attention.{n}.{part}"]
                                                       for n in ("query", "key", "value")], 0)
        hub[dst + "attn.proj.weight"] = hf[src + "attention.output.dense.weight"]
        hub[dst + "attn.proj.bias"] = hf[src + "attention.output.dense.bias"]
        hub[dst + "ls1.gamma"] = hf[src + "layer_scale1.lambda1"]
        hub[dst + "norm2.weight"] = hf[src + "norm2.weight"]
        hub[dst + "norm2.bias"] = hf[src + "norm2.bias"]
        for fc in ("fc1", "fc2"):
            for part in ("weight", "bias"):
                hub[dst + f"mlp.{fc}.{part}"] = hf[src + f"mlp.{fc}.{part}"]
        hub[dst + "ls2.gamma"] = hf[src + "layer_scale2.lambda1"]
    hub["backbone.norm.weight"] = hf["backbone.layernorm.weight"]
    hub["backbone.norm.bias"] = hf["backbone.layernorm.bias"]
    for k in ("emb_head.weight", "emb_head.bias", "score_head.weight", "score_head.bias"):
        hub[k] = hf[k]
    torch.save(hub, os.path.join(OUT, "quality_hub.pth"))


if __name__ == "__main__":
    main()
