"""gsplat 1.5.3 reference renders and timing for `gen3d render-check --reference`.

  python scripts/bench/gsplat_render.py PLY [--out gsplat_views.npy] [--repetitions 20]

Renders the validator's 16 views (518x518, white background) of PLY as the subnet-17 validator does: its loader,
transform_gs_data and orbit cameras (taken from scripts/clipvalidate_oracle.py, the validator's code written out,
so both use one definition), then gsplat.rasterization(..., packed=False, render_mode="RGB"). Times that call
(median of N after 3 warm-ups, each followed by torch.cuda.synchronize) and saves the float32 images
[16, 518, 518, 3] as .npy. Needs CUDA and gsplat 1.5.3 (its first call JIT-builds the CUDA extension).
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from clipvalidate_oracle import cameras, load, read_ply, transform  # noqa: E402

VIEWS, SIZE = 16, 518


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ply")
    parser.add_argument("--out", default="gsplat_views.npy")
    parser.add_argument("--repetitions", type=int, default=20)
    args = parser.parse_args()

    if not torch.cuda.is_available():
        sys.exit("gsplat_render.py needs a CUDA device")
    import gsplat
    from gsplat import rasterization

    dev = torch.device("cuda")
    points, opac, rot, scales, feat = load(read_ply(args.ply))
    means, nscales, nopac, _, _ = transform(points, opac, scales)
    viewmats, ks = cameras(width=SIZE, height=SIZE, views=VIEWS)
    means, rot, nscales, nopac, feat = (t.to(dev) for t in (means, rot, nscales, nopac, feat))
    viewmats, ks = viewmats.to(dev), ks.to(dev)
    background = torch.ones((VIEWS, 3), dtype=torch.float32, device=dev)

    def render():
        colors, _, _ = rasterization(means, rot, nscales, nopac, feat, viewmats, ks, SIZE, SIZE, 0.01, 100.0,
                                     backgrounds=background, render_mode="RGB", packed=False)
        return colors

    with torch.inference_mode():
        for _ in range(3):
            colors = render()
        torch.cuda.synchronize()
        times = []
        for _ in range(max(1, args.repetitions)):
            start = time.perf_counter()
            colors = render()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    times.sort()
    images = colors.float().cpu().numpy()
    assert images.shape == (VIEWS, SIZE, SIZE, 3), images.shape
    np.save(args.out, images)
    print(f"gsplat {gsplat.__version__} rasterization: {VIEWS} views at {SIZE}x{SIZE}, {points.shape[0]} Gaussians, "
          f"median {times[len(times) // 2] * 1e3:.3f} ms, min {times[0] * 1e3:.3f} ms of {len(times)} synced calls "
          f"({torch.cuda.get_device_name(0)}, torch {torch.__version__})")
    print(f"wrote {args.out}: float32 {list(images.shape)}")


if __name__ == "__main__":
    main()
