"""Oracle for Tests/TorchShimTests: runs PyTorch (CPU) on fixed fp32 inputs and stores inputs and outputs.

Every op runs on the float64 copies of the inputs (default dtype float64, so the zeros/linspace it creates are float64
too) and its result is stored as float32: the expected values carry no fp32 kernel choice of the writing machine.
Integer results (indices, counts, nonzero) are checked to be identical to the fp32 run; the random draws are fp32
draws, exact by nature.

Usage (environment: scripts/oracle-env.sh; needs torch and safetensors):
    PYTHONPATH=.deps/oracle-site .deps/torch-venv/bin/python scripts/make_shim_oracle.py            # writes Tests/TorchShimTests/Resources/shim_oracle.safetensors
    PYTHONPATH=.deps/oracle-site .deps/torch-venv/bin/python scripts/make_shim_oracle.py --measure  # writes nothing; prints per op
        max |fp32 torch - stored| and that error over (1 + |expected|), the unit the test's tolerances use; run it
        under OMP_NUM_THREADS=1 and MKL_ENABLE_INSTRUCTIONS=AVX2 / SSE4_2 too (table: ShimOracleTests.swift).
The Swift test recomputes every `out.<name>` from the `in.*` tensors through the shim and compares.
"""
import os
import sys
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

torch.manual_seed(1234)
i = {
    "x": torch.randn(2, 3, 4, 5),
    "y": torch.randn(2, 3, 4, 5),
    "pos": torch.rand(2, 3, 4, 5) + 0.1,
    "a": torch.randn(4, 6),
    "b": torch.randn(6, 3),
    "bias3": torch.randn(3),
    "ba": torch.randn(3, 4, 6),
    "bb": torch.randn(3, 6, 5),
    "bself": torch.randn(3, 4, 5),
    "img": torch.randn(2, 4, 9, 11),
    "w2": torch.randn(6, 4, 3, 3),
    "wg": torch.randn(6, 2, 3, 3),
    "b6": torch.randn(6),
    "vol": torch.randn(1, 3, 5, 6, 7),
    "w3": torch.randn(4, 3, 3, 3, 3),
    "seq": torch.randn(2, 3, 8),
    "w1": torch.randn(5, 3, 3),
    "wt2": torch.randn(4, 3, 4, 4),
    "g4": torch.randn(4) + 1,
    "b4": torch.randn(4),
    "g5": torch.randn(5) + 1,
    "b5": torch.randn(5),
    "rm": torch.randn(4),
    "rv": torch.rand(4) + 0.5,
    "q": torch.randn(2, 3, 7, 8),
    "k": torch.randn(2, 3, 9, 8),
    "v": torch.randn(2, 3, 9, 8),
    "amask": torch.rand(7, 9) > 0.3,
    "grid": torch.rand(2, 5, 6, 2) * 2.4 - 1.2,
    "idx": torch.tensor([2, 0, 1, 2], dtype=torch.int64),
    "gidx": torch.randint(0, 5, (2, 3, 4, 5)),
    "ints": torch.tensor([3, 1, 2, 3, 3, 1, 7], dtype=torch.int64),
    "mask": torch.randn(2, 3, 4, 5) > 0,
    "nan": torch.tensor([1.0, float("nan"), float("inf"), -float("inf"), -2.0]),
}
i["amask"][:, 0] = True  # every query row attends somewhere


def outputs(i):
    x, y = i["x"], i["y"]
    return {
        "add": x + y, "sub": x - y, "mul": x * y, "div": x / (y.abs() + 0.5),
        "add_s": x + 2.5, "rsub_s": 2.5 - x, "rdiv_s": 3.0 / (x.abs() + 0.5), "mul_bcast": x * i["bias3"][None, :, None, None].expand(2, 3, 4, 5)[:, :, :1, :1],
        "exp": x.exp(), "log": i["pos"].log(), "sqrt": i["pos"].sqrt(), "rsqrt": i["pos"].rsqrt(),
        "sin": x.sin(), "cos": x.cos(), "tanh": x.tanh(), "sigmoid": x.sigmoid(), "relu": x.relu(),
        "silu": F.silu(x), "gelu": F.gelu(x), "gelu_tanh": F.gelu(x, approximate="tanh"),
        "softplus": F.softplus(x, beta=2.0, threshold=5.0), "erf": torch.erf(x), "pow": i["pos"].pow(1.7),
        "clamp": x.clamp(-0.5, 0.7), "nan_to_num": torch.nan_to_num(i["nan"], 0.0, 9.0, -9.0),
        "where": torch.where(i["mask"], x, y),
        "matmul": i["a"] @ i["b"], "linear": F.linear(i["a"], i["b"].t(), i["bias3"]),
        "bmm": torch.bmm(i["ba"], i["bb"]), "baddbmm": torch.baddbmm(i["bself"], i["ba"], i["bb"], beta=0.5, alpha=2.0),
        "conv2d": F.conv2d(i["img"], i["w2"], i["b6"], stride=2, padding=1),
        "conv2d_groups": F.conv2d(i["img"], i["wg"], None, padding=(1, 2), dilation=(1, 2), groups=2),
        "conv3d": F.conv3d(i["vol"], i["w3"], None, padding=1),
        "conv1d": F.conv1d(i["seq"], i["w1"], None, padding=1),
        "conv_transpose2d": F.conv_transpose2d(i["img"], i["wt2"], None, stride=2, padding=1, output_padding=1),
        "group_norm": F.group_norm(i["img"], 2, i["g4"], i["b4"], 1e-5),
        "layer_norm": F.layer_norm(x, [5], i["g5"], i["b5"], 1e-6),
        "rms_norm": F.rms_norm(x, [5], i["g5"], 1e-6),
        "batch_norm": F.batch_norm(i["img"], i["rm"], i["rv"], i["g4"], i["b4"], False, 0.0, 1e-5),
        "softmax": F.softmax(x, -1), "log_softmax": F.log_softmax(x, 1),
        "sdpa": F.scaled_dot_product_attention(i["q"], i["k"], i["v"]),
        "sdpa_mask": F.scaled_dot_product_attention(i["q"], i["k"], i["v"], attn_mask=i["amask"]),
        "sdpa_causal": F.scaled_dot_product_attention(i["q"], i["q"], i["q"], is_causal=True),
        "interp_nearest": F.interpolate(i["img"], size=(13, 7), mode="nearest"),
        "interp_bilinear": F.interpolate(i["img"], size=(13, 7), mode="bilinear", align_corners=False),
        "interp_bilinear_ac": F.interpolate(i["img"], size=(13, 7), mode="bilinear", align_corners=True),
        "interp_bicubic": F.interpolate(i["img"], size=(13, 17), mode="bicubic", align_corners=False),
        "interp_bicubic_aa": F.interpolate(i["img"], size=(5, 6), mode="bicubic", align_corners=False, antialias=True),
        "interp_bilinear_aa": F.interpolate(i["img"], size=(5, 6), mode="bilinear", align_corners=False, antialias=True),
        "interp_area": F.interpolate(i["img"], size=(3, 4), mode="area"),
        "interp_trilinear": F.interpolate(i["vol"], size=(7, 3, 9), mode="trilinear"),
        "grid_sample": F.grid_sample(i["img"], i["grid"], mode="bilinear", padding_mode="zeros", align_corners=False),
        "grid_sample_border": F.grid_sample(i["img"], i["grid"], mode="bilinear", padding_mode="border", align_corners=True),
        "pad_constant": F.pad(i["img"], (1, 2, 3, 0), value=0.5),
        "pad_reflect": F.pad(i["img"], (2, 1, 1, 2), mode="reflect"),
        "pad_replicate": F.pad(i["img"], (2, 1, 1, 2), mode="replicate"),
        "max_pool": F.max_pool2d(i["img"], 3, 2, 1), "avg_pool": F.avg_pool2d(i["img"], 2, 2),
        "adaptive_avg_pool": F.adaptive_avg_pool2d(i["img"], (1, 1)),
        "pixel_shuffle": F.pixel_shuffle(i["img"], 2),
        "unfold": F.unfold(i["img"], (3, 3), padding=1),
        "sum_dims": x.sum((1, 3)), "sum_all": x.sum(), "mean_keep": x.mean(2, keepdim=True),
        "var": x.var(1), "std": x.std((2, 3), correction=0), "amax": x.amax(-1), "amin": x.amin((0, 2)),
        "max_dim_values": x.max(2).values, "max_dim_indices": x.max(2).indices, "argmax": x.argmax(-1),
        "logsumexp": torch.logsumexp(x, 3), "norm": x.norm(2, dim=-1),
        "topk_values": x.topk(2, dim=-1).values, "topk_indices": x.topk(2, dim=-1).indices,
        "sort_values": x.sort(-1).values, "argsort": x.argsort(-1, descending=True),
        "cumsum": x.cumsum(1), "nonzero": i["mask"].nonzero(),
        "unique": torch.unique(i["ints"]), "unique_inverse": torch.unique(i["ints"], return_inverse=True)[1],
        "unique_counts": torch.unique(i["ints"], return_counts=True)[1],
        "index_select": x.index_select(2, i["idx"][:3]), "gather": x.gather(3, i["gidx"]),
        "scatter_add": torch.zeros(2, 3, 4, 5).scatter_add(3, i["gidx"], x),
        "index_add": torch.zeros(4, 6).index_add(0, i["idx"], i["a"]),
        "masked_fill": x.masked_fill(i["mask"], -1.0),
        "permute": x.permute(3, 1, 0, 2).contiguous(), "transpose": x.transpose(1, 3).contiguous(),
        "slice": x[:, 1:3, ::2, 1:].contiguous(), "select": x.select(2, 1).contiguous(), "narrow": x.narrow(3, 1, 3).contiguous(),
        "flip": x.flip(1, 3), "roll": x.roll((1, -2), (2, 3)), "repeat": i["a"].repeat(2, 3),
        "repeat_interleave": i["a"].repeat_interleave(2, 0), "expand": i["bias3"][None, :].expand(4, 3).contiguous(),
        "cat": torch.cat([x, y], 2), "stack": torch.stack([x, y], 1), "tril": i["a"].tril(), "triu": i["a"].triu(1),
        "advanced_index": x[i["idx"][1:3], :, i["idx"][2:]],
        "index_put_acc": torch.zeros(4, 6).index_put((i["idx"],), i["a"], accumulate=True),
        "chunk1": x.chunk(3, 1)[1].contiguous(), "split_last": x.split(2, 3)[2].contiguous(),
        "arange": torch.arange(2, 11, 3, dtype=torch.float32), "linspace": torch.linspace(-1, 1, 7),
        "einsum": torch.einsum("bij,bjk->bik", i["ba"], i["bb"]),
        "normalize": F.normalize(x, dim=-1),
    }


o32 = outputs(i)
torch.set_default_dtype(torch.float64)
o64 = outputs({k: v.double() if v.is_floating_point() else v for k, v in i.items()})
torch.set_default_dtype(torch.float32)
o = {}
for k, v in o64.items():
    if v.is_floating_point():
        o[k] = v.float()
    else:
        assert torch.equal(v, o32[k]), f"{k}: integer result differs between the fp32 and float64 runs"
        o[k] = v
torch.manual_seed(42)
o["randn_seed42"] = torch.randn(3, 4)
o["rand_seed42_after"] = torch.rand(5)
g = torch.Generator().manual_seed(7)
o["randn_gen7"] = torch.randn(1, 8, 4, 4, 4, generator=g)
o["randint_gen7_after"] = torch.randint(0, 100, (6,), generator=g)

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "Tests", "TorchShimTests", "Resources", "shim_oracle.safetensors")
if "--measure" in sys.argv:
    stored = load_file(out)
    for k in sorted(o32):
        e, g = stored["out." + k].double(), o32[k].double()
        if not o32[k].is_floating_point():
            print(f"{k:20s} {'exact' if torch.equal(e, g) else 'DIFFERS'}")
            continue
        finite = e.isfinite()
        d = (g - e).abs().masked_fill(~finite, 0)
        print(f"{k:20s} max abs {d.max().item():.3g}  max abs/(1+|e|) "
              f"{(d / (1 + e.abs().masked_fill(~finite, 0))).max().item():.3g}")
    sys.exit(0)
tensors = {f"in.{k}": v.contiguous() for k, v in i.items()}
tensors.update({f"out.{k}": v.contiguous() for k, v in o.items()})
save_file(tensors, out, metadata={"torch": torch.__version__})
print(f"wrote {len(o)} cases to {os.path.normpath(out)}")
