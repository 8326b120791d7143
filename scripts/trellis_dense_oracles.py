#!/usr/bin/env python3
"""Oracle data for the dense TRELLIS tests (Tests/ModelsTests/Resources/TrellisDense).

Needs torch, pillow, transformers and safetensors, e.g.
    .deps/torch-venv/bin/python -m pip install --target .deps/oracle-site pillow transformers
    PYTHONPATH=.deps/oracle-site .deps/torch-venv/bin/python scripts/trellis_dense_oracles.py

Writes:
  lanczos.safetensors     PIL Image.resize(LANCZOS) cases: `<case>.input` uint8 [H, W, C], `<case>.output`
  preprocess.safetensors  TRELLIS preprocess_image (official code, output size as a parameter) on synthetic RGBA
                          images: `<case>.input` [H, W, 4], `<case>.output` [S, S, 3] (full bytes for small S; for
                          S = 518 only per-row / per-column sums and an FNV-1a hash to keep the file small), plus
                          `normalize.input` / `normalize.output` (ImageNet normalisation of an RGB8 image)
  dinov2_plain/           a tiny random HF `Dinov2Model` (config.json + model.safetensors)
  dinov2.safetensors      `<case>.pixel_values`, `.embeddings`, `.hidden_states_last`, `.last_hidden_state` for
                          the plain model at its size and at 84x70, and for fixtures/trellis/dinov2_tiny at 84x70

The image operations (PIL LANCZOS, preprocess_image) are exact integer results and `normalize.output` is the official
float32 arithmetic ((x / 255 - mean) / std, each op correctly rounded, the same on every CPU path): compared exactly.
The DINOv2 outputs are computed in float64 (model.to(float64) on the float32 weights, float32 pixel draws upcast) and
stored as float32; regenerating with OMP_NUM_THREADS=1, MKL_ENABLE_INSTRUCTIONS=AVX2 or SSE4_2 gives byte-identical
files. (transformers casts the position embeddings to float32 for the bicubic interpolation whatever the model dtype;
that float32 step is kept, it is part of the official computation.) `--measure` prints the float32 oracle's error.
Measured spread, max abs vs the stored values over default threads, OMP_NUM_THREADS=1,
MKL_ENABLE_INSTRUCTIONS=AVX2 OMP_NUM_THREADS=1 and MKL_ENABLE_INSTRUCTIONS=SSE4_2 (fp32 oracle | Swift
TrellisDenseTests.testDINOv2*), worst case of the 12 tensors: embeddings 3.2e-6 | 3.2e-6, hidden_states_last
3.6e-6 | 3.6e-6, last_hidden_state 2.9e-6 | 2.9e-6 (|x| <= 7.6; the same numbers in all four settings). The test's
atol 1e-5 is ~3x that.
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Resources", "TrellisDense")
FIXTURES = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "trellis")
if not os.path.isdir(FIXTURES):
    FIXTURES = "/work/shared/fixtures/trellis"


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def lanczos_cases(rng):
    cases = {}

    def add(name, arr, mode, size):
        im = Image.fromarray(arr, mode=mode) if mode != "RGBA" else Image.fromarray(arr)
        out = np.array(im.resize(size, Image.Resampling.LANCZOS))
        cases[f"{name}.input"] = torch.from_numpy(arr.copy())
        cases[f"{name}.output"] = torch.from_numpy(out.reshape(size[1], size[0], -1).copy())

    rgba = rng.integers(0, 256, size=(47, 61, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(rng.random((47, 61)) < 0.3, 255, rgba[..., 3])
    rgba[:5, :, 3] = 0
    add("rgba_down", rgba, "RGBA", (23, 19))
    add("rgba_up", rgba[:11, 20:33].copy(), "RGBA", (29, 31))
    add("rgba_vertical", rgba[:29, :37].copy(), "RGBA", (37, 50))
    rgb = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    add("rgb_down", rgb, "RGB", (17, 13))
    add("rgb_up_wide", rgb[:7, :9].copy(), "RGB", (40, 9))
    # smooth content with hard edges (ringing -> clipping)
    yy, xx = np.mgrid[0:50, 0:50]
    smooth = np.stack([(xx * 5) % 256, (yy * 5) % 256, ((xx + yy) * 3) % 256, np.where((xx - 25) ** 2 + (yy - 25) ** 2 < 300, 255, 0)], -1).astype(np.uint8)
    add("rgba_disc_down", smooth, "RGBA", (21, 21))
    add("rgba_disc_up", smooth, "RGBA", (123, 123))
    return cases


def official_preprocess(rgba: np.ndarray, size: int) -> np.ndarray:
    """trellis/pipelines/trellis_image_to_3d.py preprocess_image (alpha branch), 518 replaced by `size`."""
    output = Image.fromarray(rgba)
    output_np = np.array(output)
    alpha = output_np[:, :, 3]
    bbox = np.argwhere(alpha > 0.8 * 255)
    bbox = np.min(bbox[:, 1]), np.min(bbox[:, 0]), np.max(bbox[:, 1]), np.max(bbox[:, 0])
    center = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    side = max(bbox[2] - bbox[0], bbox[3] - bbox[1])
    side = int(side * 1.2)
    bbox = center[0] - side // 2, center[1] - side // 2, center[0] + side // 2, center[1] + side // 2
    output = output.crop(bbox)
    output = output.resize((size, size), Image.Resampling.LANCZOS)
    output = np.array(output).astype(np.float32) / 255
    output = output[:, :, :3] * output[:, :, 3:4]
    return np.array(Image.fromarray((output * 255).astype(np.uint8)))


def synthetic_rgba(rng, h, w, cx, cy, rx, ry):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    alpha = np.clip((1.3 - d) * 400, 0, 255).astype(np.uint8)
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    rgb[..., 0] = ((xx * 7 + yy * 3) % 256).astype(np.uint8)
    return np.concatenate([rgb, alpha[..., None]], -1)


def crop_side(rgba: np.ndarray) -> int:
    """Side of the square the official code crops (x1 - x0 after PIL's rounding)."""
    alpha = rgba[:, :, 3]
    bbox = np.argwhere(alpha > 0.8 * 255)
    bbox = np.min(bbox[:, 1]), np.min(bbox[:, 0]), np.max(bbox[:, 1]), np.max(bbox[:, 0])
    cx = (bbox[0] + bbox[2]) / 2
    side = int(max(bbox[2] - bbox[0], bbox[3] - bbox[1]) * 1.2)
    return int(round(cx + side // 2)) - int(round(cx - side // 2))


def preprocess_cases(rng):
    cases = {}
    images = {
        "small_up": (synthetic_rgba(rng, 90, 120, 61.5, 40, 30, 22), [64, 518]),
        "large_down": (synthetic_rgba(rng, 200, 150, 70, 110, 60, 70), [48, 518]),
        "edge_clipped": (synthetic_rgba(rng, 80, 100, 8, 70, 25, 30), [40]),
    }
    same = synthetic_rgba(rng, 60, 60, 30, 30, 18, 18)
    images["no_resize"] = (same, [crop_side(same)])
    for name, (img, sizes) in images.items():
        cases[f"{name}.input"] = torch.from_numpy(img)
        for s in sizes:
            out = official_preprocess(img, s)
            key = f"{name}.s{s}"
            if s <= 64:
                cases[f"{key}.output"] = torch.from_numpy(out.copy())
            else:
                cases[f"{key}.row_sums"] = torch.from_numpy(out.astype(np.int64).sum(axis=(1, 2)))
                cases[f"{key}.col_sums"] = torch.from_numpy(out.astype(np.int64).sum(axis=(0, 2)))
                h = fnv1a64(out.tobytes())
                cases[f"{key}.fnv1a"] = torch.tensor([h - (1 << 64) if h >= (1 << 63) else h], dtype=torch.int64)
    # encode_image: RGB8 -> float32 /255 -> torchvision Normalize (sub mean, div std in float32)
    rgb = rng.integers(0, 256, size=(9, 11, 3), dtype=np.uint8)
    x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float32)[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float32)[:, None, None]
    cases["normalize.input"] = torch.from_numpy(rgb)
    cases["normalize.output"] = ((x - mean) / std).contiguous()
    return cases


def perturb(model, seed):
    """Random non-trivial values for every parameter (HF init leaves biases 0 and layer scales 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2 and "embeddings" not in name:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            elif name.endswith("lambda1") or ("norm" in name and name.endswith("weight")):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif "embeddings" in name and "projection.weight" in name:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
            elif "embeddings" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def dinov2_cases(rng, dtype=torch.float64):
    from transformers import Dinov2Config, Dinov2Model, Dinov2WithRegistersModel

    cases = {}

    def run(model, name, h, w):
        """Pixels drawn in float32 (stored as is); the model's outputs computed in `dtype` and stored as float32."""
        pixels = torch.from_numpy(rng.standard_normal((1, 3, h, w)).astype(np.float32))
        with torch.no_grad():
            out = model.to(dtype)(pixel_values=pixels.to(dtype), output_hidden_states=True)
        cases[f"{name}.pixel_values"] = pixels
        cases[f"{name}.embeddings"] = out.hidden_states[0].float().contiguous()
        cases[f"{name}.hidden_states_last"] = out.hidden_states[-1].float().contiguous()
        cases[f"{name}.last_hidden_state"] = out.last_hidden_state.float().contiguous()

    torch.manual_seed(7)
    config = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=4, image_size=56,
                          patch_size=14, layerscale_value=1.0, attn_implementation="eager")
    plain = Dinov2Model(config).eval()
    perturb(plain, 11)
    if dtype == torch.float64:
        plain.save_pretrained(os.path.join(OUT, "dinov2_plain"), safe_serialization=True)
    run(plain, "plain_56", 56, 56)
    run(plain, "plain_84x70", 84, 70)

    registers = Dinov2WithRegistersModel.from_pretrained(os.path.join(FIXTURES, "dinov2_tiny")).eval()
    run(registers, "registers_84x70", 84, 70)
    run(registers, "registers_70", 70, 70)
    return cases


def measure(cases):
    """Max abs difference of a float32 run of the DINOv2 oracle (this process's threads / MKL path) from the stored
    float64-made values."""
    from safetensors.torch import load_file
    ref = load_file(os.path.join(OUT, "dinov2.safetensors"))
    for k in sorted(cases):
        if not k.endswith("pixel_values"):
            print(f"{k:40s} {(cases[k] - ref[k]).abs().max().item():.3g}  (|ref| max {ref[k].abs().max().item():.3g})")


def main():
    rng = np.random.default_rng(20261125)
    os.makedirs(OUT, exist_ok=True)
    lanczos, preprocess = lanczos_cases(rng), preprocess_cases(rng)   # the draws before DINOv2's, in order
    if sys.argv[1:] == ["--measure"]:
        measure(dinov2_cases(rng, torch.float32))
        return
    save_file(lanczos, os.path.join(OUT, "lanczos.safetensors"))
    save_file(preprocess, os.path.join(OUT, "preprocess.safetensors"))
    save_file(dinov2_cases(rng), os.path.join(OUT, "dinov2.safetensors"))
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))


if __name__ == "__main__":
    main()
