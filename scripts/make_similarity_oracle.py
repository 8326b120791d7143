#!/usr/bin/env python3
"""Oracle for the Swift SSIM and LPIPS of the validator (fixtures/openclip has none for them).

Runs torchmetrics itself, as the validator's similarity_scorer.py (commit 5fc61f1b) calls it: one metric call per
pair (view i, view i+1 mod N). torchmetrics is not in the torch venv; install it beside it, e.g.

  .deps/torch-venv/bin/pip install --target /tmp/tm_new --no-deps torchmetrics==1.8.2 lightning-utilities packaging typing_extensions
  .deps/torch-venv/bin/pip install --target /tmp/tm_old --no-deps torchmetrics==1.4.1
  TM_NEW=/tmp/tm_new TM_OLD=/tmp/tm_old .deps/torch-venv/bin/python scripts/make_similarity_oracle.py

(1.4.1 is the last release whose SSIM crops the 5 px border; 1.4.2 and later average the whole map.)

torchvision is not installed either: LPIPS's AlexNet is built here with torchvision's exact layer structure and
seeded random weights that the Swift test regenerates with the same torch generator (`alexnet_random_state`: for
convs 0, 3, 6, 8, 10 in turn, weight = randn * 1/sqrt(fan_in), bias = randn * 0.1, one CPU generator seeded 5),
so no 10 MB weight file is stored; the LPIPS linear layers are torchmetrics' own pretrained alex.pth (re-saved).
The metrics run in float64 (inputs uint8 / 255 in float64, metric modules .to(float64)) and the per-pair values are
stored in float64; regenerating with OMP_NUM_THREADS=1, MKL_ENABLE_INSTRUCTIONS=AVX2 or SSE4_2 gives byte-identical
files. `--measure` prints how far float32 torchmetrics runs are from them. Measured (default threads, OMP_NUM_THREADS=1,
MKL_ENABLE_INSTRUCTIONS=AVX2 OMP_NUM_THREADS=1, MKL_ENABLE_INSTRUCTIONS=SSE4_2; fp32 torchmetrics | Swift
ValidatorSimilarityTests): SSIM 1.93e-6 | 1.93e-6, SSIM cropped 2.02e-6 | 2.02e-6, LPIPS 2.9e-9 | 2.9e-9.
Run with the oracle site folder on the path for safetensors, e.g.
  TM_NEW=/tmp/tm_new TM_OLD=/tmp/tm_old PYTHONPATH=.deps/oracle-site .deps/torch-venv/bin/python scripts/make_similarity_oracle.py [--measure]

Output: Tests/ModelsTests/Resources/validator_similarity/
  views.safetensors      input.views [5, 60, 72, 3] uint8; output.lpips_pairs / output.ssim_pairs /
                         output.ssim_pairs_cropped [5] float64
  lpips_alex_lin.pth     lin0..lin4.model.1.weight from torchmetrics 1.8.2, legacy format
"""
import os
import subprocess
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Resources", "validator_similarity")


def alexnet_features():
    # torchvision.models.alexnet().features
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), torch.nn.ReLU(inplace=True),
        torch.nn.MaxPool2d(kernel_size=3, stride=2),
        torch.nn.Conv2d(64, 192, kernel_size=5, padding=2), torch.nn.ReLU(inplace=True),
        torch.nn.MaxPool2d(kernel_size=3, stride=2),
        torch.nn.Conv2d(192, 384, kernel_size=3, padding=1), torch.nn.ReLU(inplace=True),
        torch.nn.Conv2d(384, 256, kernel_size=3, padding=1), torch.nn.ReLU(inplace=True),
        torch.nn.Conv2d(256, 256, kernel_size=3, padding=1), torch.nn.ReLU(inplace=True),
        torch.nn.MaxPool2d(kernel_size=3, stride=2),
    )


def alexnet_random_state():
    g = torch.Generator().manual_seed(5)
    state = {}
    for index, (cin, cout, k) in zip((0, 3, 6, 8, 10), ((3, 64, 11), (64, 192, 5), (192, 384, 3), (384, 256, 3),
                                                       (256, 256, 3))):
        state[f"{index}.weight"] = torch.randn(cout, cin, k, k, generator=g) * (1.0 / (cin * k * k) ** 0.5)
        state[f"{index}.bias"] = torch.randn(cout, generator=g) * 0.1
    return state


def make_views(n=5, h=60, w=72):
    """A bright smooth shape that moves a little from view to view on a dark background, plus noise: LPIPS/SSIM values
    like real turntables (SSIM ~0.58-0.66). Dark, not white: SSIM's variances are E[x^2] - E[x]^2, and on a flat white
    background (E[x] ~0.9, noise variance ~2e-4) that difference cancels so much that float32 torchmetrics is off the
    float64 value by 4.7e-5; on this background the float32 error is ~2e-6."""
    g = torch.Generator().manual_seed(17)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    views = []
    for i in range(n):
        cx, cy = 0.3 + 0.1 * i, 0.5 + 0.05 * (i % 2)
        blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.02)
        img = torch.stack([0.15 + 0.6 * blob, 0.15 + 0.3 * blob * xx, 0.15 + 0.5 * blob * yy], -1)
        img = img + 0.015 * torch.randn(h, w, 3, generator=g)
        views.append((img.clamp(0, 1) * 255).to(torch.uint8))
    return torch.stack(views)


def worker(which, dtype):
    """Runs in a subprocess with one torchmetrics on sys.path; prints the per-pair values. The metrics run in `dtype`
    (the uint8 views / 255 in that dtype, metric modules .to(dtype))."""
    views = torch.load(os.path.join(OUT, "_views.pt"))
    n = views.shape[0]
    if which in ("ssim", "ssim_cropped"):
        from torchmetrics.image import StructuralSimilarityIndexMeasure
        metric = StructuralSimilarityIndexMeasure(data_range=1.0).to(dtype)
        vals = []
        for i in range(n):
            a = views[i].unsqueeze(0).permute(0, 3, 1, 2).to(dtype) / 255.0
            b = views[(i + 1) % n].unsqueeze(0).permute(0, 3, 1, 2).to(dtype) / 255.0
            vals.append(float(metric(a, b).detach().cpu().numpy()))
        print(repr(vals))
        return
    import torchmetrics.functional.image.lpips as lp
    features = alexnet_features()
    features.load_state_dict(alexnet_random_state())
    lp._get_tv_model_features = lambda net, pretrained=False: features
    import torchmetrics.image.lpip as lpip_module
    lpip_module._TORCHVISION_AVAILABLE = True     # only its AlexNet factory needs torchvision, replaced above
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity
    metric = LearnedPerceptualImagePatchSimilarity(normalize=True).to(dtype)
    vals = []
    for i in range(n):
        image1 = views[i].unsqueeze(0).permute(0, 3, 1, 2).to(dtype) / 255.0
        image1 = torch.clip(F.interpolate(image1, size=(256, 256), mode="bicubic", align_corners=False), 0, 1)
        image2 = views[(i + 1) % n].unsqueeze(0).permute(0, 3, 1, 2).to(dtype) / 255.0
        image2 = torch.clip(F.interpolate(image2, size=(256, 256), mode="bicubic", align_corners=False), 0, 1)
        vals.append(float(metric(image1, image2).detach().cpu().numpy().flatten()[0]))  # numpy 1.26 float() of 1 element
    # lin0..lin4 as in the published alex.pth (the module also lists them again under `lins.N`)
    if dtype == torch.float32:
        lin = {k: v for k, v in metric.net.state_dict().items() if k[:3] == "lin" and k[3].isdigit()}
        path = os.path.join(OUT, "lpips_alex_lin.pth")
        # The legacy format's bytes differ from run to run (storage keys); rewrite only when the values change.
        old = torch.load(path) if os.path.exists(path) else {}
        if old.keys() != lin.keys() or any(not torch.equal(old[k], lin[k]) for k in lin):
            torch.save(lin, path, _use_new_zipfile_serialization=False)
    print(repr(vals))


def run_worker(which, path, dtype="float64"):
    env = dict(os.environ, PYTHONPATH=path)
    done = subprocess.run([sys.executable, __file__, "--worker", which, dtype], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"worker {which} failed:\n{done.stderr}")
    return eval(done.stdout.strip().splitlines()[-1])


def main():
    new, old = os.environ.get("TM_NEW"), os.environ.get("TM_OLD")
    if not new or not old:
        sys.exit("set TM_NEW and TM_OLD to folders holding torchmetrics 1.8.2 and 1.4.1 (see the docstring)")
    os.makedirs(OUT, exist_ok=True)
    views = make_views()
    torch.save(views, os.path.join(OUT, "_views.pt"))
    if sys.argv[1:] == ["--measure"]:
        measure(new, old)
        return

    run_worker("lpips", new, "float32")   # writes lpips_alex_lin.pth (the float32 weights as torchmetrics ships them)
    lpips_pairs = run_worker("lpips", new)
    ssim_pairs = run_worker("ssim", new)
    ssim_cropped = run_worker("ssim_cropped", old + os.pathsep + new)   # old torchmetrics first, new's deps after
    from safetensors.torch import save_file
    save_file({
        "input.views": views.contiguous(),
        "output.lpips_pairs": torch.tensor(lpips_pairs, dtype=torch.float64),
        "output.ssim_pairs": torch.tensor(ssim_pairs, dtype=torch.float64),
        "output.ssim_pairs_cropped": torch.tensor(ssim_cropped, dtype=torch.float64),
    }, os.path.join(OUT, "views.safetensors"))
    os.remove(os.path.join(OUT, "_views.pt"))
    print("lpips", lpips_pairs, "\nssim", ssim_pairs, "\nssim cropped", ssim_cropped)


def measure(new, old):
    """Max abs difference of float32 torchmetrics runs (this process's threads / MKL path) from the stored values."""
    from safetensors.torch import load_file
    ref = load_file(os.path.join(OUT, "views.safetensors"))
    for key, which, path in (("lpips_pairs", "lpips", new), ("ssim_pairs", "ssim", new),
                             ("ssim_pairs_cropped", "ssim_cropped", old + os.pathsep + new)):
        got = torch.tensor(run_worker(which, path, "float32"), dtype=torch.float64)
        print(f"{key:20s} {(got - ref['output.' + key]).abs().max().item():.3g}")
    os.remove(os.path.join(OUT, "_views.pt"))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], getattr(torch, sys.argv[3]))
    else:
        main()
