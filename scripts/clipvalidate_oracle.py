"""Oracle for CLIPValidate: the subnet-17 validator's own preprocessing, written from its source
(404-Repo/three-gen-subnet validation/engine: io/ply/loader.py, rendering/gaussian_splatting/gs_utils.py
transform_gs_data, gs_camera.py OrbitCamera with opengl_conv=True, gs_renderer.py rasterization call).

  python scripts/clipvalidate_oracle.py swift PLY OUT.swift   -> Swift constants for CLIPValidateTests (CPU torch)
  python scripts/clipvalidate_oracle.py measure PLY           -> the validator's float32 values vs the float64 ones
  python scripts/clipvalidate_oracle.py render PLY OUTDIR     -> gsplat 1.5.3 renders of the 16 views (needs CUDA + gsplat)

Run with the repo's torch venv: .deps/torch-venv/bin/python.

The Swift constants are the validator's formulas evaluated in float64 on the PLY's float32 fields, rounded to Float
(`scaling` stays a Double, as the validator's numpy value is). The validator's own float32 computation is this far from
them (`measure`; max abs / max(1, |x|), the same with default threads, OMP_NUM_THREADS=1,
MKL_ENABLE_INSTRUCTIONS=AVX2 OMP_NUM_THREADS=1 and MKL_ENABLE_INSTRUCTIONS=SSE4_2): viewmats 1.2e-7 (2.4e-7 abs at
|x| = 2.5), activated opacities/scales/rotations/colours <= 3.2e-8, positions 2.9e-8, normalised scales 3.3e-9,
opacities 1.5e-8, mean 2e-9; the Swift code (CLIPValidateTests) is within ~1 ulp of them in the same four settings
(viewmats <= 2.4e-7 abs, Gaussian values <= 3e-8). Tests: viewmats 1e-6 abs, Gaussian values 1.5e-7 x max(1, |x|).
The intrinsics are exact (one float64 -> float32 rounding in both).
"""
import sys

import numpy as np
import torch

C0 = 0.28209479177387814
SAMPLES = [0, 1, 2, 1000, 26354, 52708]


def read_ply(path):
    raw = open(path, "rb").read()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    header = raw[:end].decode().splitlines()
    n = int([l for l in header if l.startswith("element vertex")][0].split()[2])
    names = [l.split()[2] for l in header if l.startswith("property")]
    arr = np.frombuffer(raw[end:end + n * len(names) * 4], dtype="<f4").reshape(n, len(names))
    return {k: arr[:, i].copy() for i, k in enumerate(names)}


def load(col, dtype=torch.float32):
    """engine/io/ply/loader.py: activations as the validator applies them (float32; `dtype` float64 gives the exact
    values of the same formulas on the stored float32 fields)."""
    def column(names):
        return torch.tensor(np.stack([col[n] for n in names], 1), dtype=dtype)

    points = column(["x", "y", "z"])
    opac = 1.0 / (1.0 + torch.exp(-1.0 * (torch.tensor(col["opacity"], dtype=dtype) - 0.0)))
    rot = torch.nn.functional.normalize(column([f"rot_{i}" for i in range(4)]))
    if dtype == torch.float32:   # the validator's numpy float32 exp and colour arithmetic
        scales = torch.tensor(np.exp(np.vstack([col[f"scale_{i}"] for i in range(3)]).T), dtype=dtype)
        feat = torch.tensor(np.array([0.5 + C0 * col[f"f_dc_{i}"] for i in range(3)]).T, dtype=dtype)
    else:
        scales = column([f"scale_{i}" for i in range(3)]).exp()
        feat = 0.5 + C0 * column([f"f_dc_{i}" for i in range(3)])
    return points, opac, rot, scales, feat


def transform(points, opac, scales, ref_bbox_size=1.5):
    """gs_utils.transform_gs_data (open3d's bbox extent = float64 max - min). The validator's centre is a float32 numpy
    mean; for float64 points everything is float64."""
    p = points.detach().cpu().numpy()
    p64 = p.astype(np.float64)
    scaling = ref_bbox_size / np.max(p64.max(0) - p64.min(0))
    mean = p.mean()
    centered = (p - mean).astype(p.dtype)
    means = torch.tensor(centered) * scaling
    scales = scales * scaling
    opac = torch.clip(opac * (1.0 / np.prod(scaling)), 0.0, 1.0)
    return means, scales, opac, float(scaling), float(mean)


def safe_normalize(x):
    return x / torch.sqrt(torch.clamp(torch.dot(x, x), min=1e-20))


def cameras(width=518, height=518, views=16, radius=2.5, fov_deg=49.1, dtype=torch.float32):
    """gs_camera.OrbitCamera.compute_transform_orbit + world_to_camera_transform + intrinsics (the validator's float32
    torch; `dtype` float64 gives the exact values)."""
    fov = np.deg2rad(fov_deg)
    thetas = np.linspace(0, 360, num=views)
    phis = np.full_like(thetas, -15.0)
    viewmats, ks = torch.empty((views, 4, 4), dtype=dtype), torch.empty((views, 3, 3), dtype=dtype)
    for j, (theta, phi) in enumerate(zip(thetas, phis)):
        el, az = np.deg2rad(phi), np.deg2rad(theta)
        x = radius * np.cos(el) * np.sin(az)
        y = -radius * np.sin(el)
        z = radius * np.cos(el) * np.cos(az)
        target = torch.zeros([3], dtype=dtype)
        campos = torch.tensor([x, y, z], dtype=dtype) + target
        forward = safe_normalize(campos - target)
        up = torch.tensor([0, 1, 0], dtype=dtype)
        right = safe_normalize(torch.linalg.cross(up, forward))
        up = safe_normalize(torch.linalg.cross(forward, right))
        c2w = torch.eye(4, dtype=dtype)
        c2w[:3, :3] = torch.stack((right, up, forward), dim=1)
        c2w[:3, 3] = campos
        c2w[:3, 1:3] *= -1
        r = c2w[:3, :3].transpose(0, 1)
        t = -r @ c2w[:3, 3].unsqueeze(1)
        w2c = torch.eye(4, dtype=dtype)
        w2c[:3, :4] = torch.cat((r, t), dim=1)
        viewmats[j] = w2c
        tan_half = np.tan(0.5 * fov)
        k = torch.eye(3, dtype=dtype)
        k[0, 0] = width / (2 * tan_half)
        k[1, 1] = height / (2 * tan_half)
        k[0, 2] = width // 2
        k[1, 2] = height // 2
        ks[j] = k
    return viewmats, ks


def swift_floats(values):
    return "[" + ", ".join(repr(float(v)) for v in np.asarray(values, dtype=np.float32).ravel()) + "]"


def oracle_values(ply, dtype):
    points, opac, rot, scales, feat = load(read_ply(ply), dtype)
    means, nscales, nopac, scaling, mean = transform(points, opac, scales)
    viewmats, ks = cameras(dtype=dtype)
    s = SAMPLES
    return {"count": points.shape[0], "scaling": scaling, "mean": mean,
            "activatedOpacities": opac[s], "activatedScales": scales[s], "activatedRotations": rot[s],
            "activatedColors": feat[s], "positions": means[s], "scales": nscales[s], "opacities": nopac[s],
            "viewmats": viewmats, "intrinsics": ks}


def measure(ply):
    """How far the validator's own float32 computation is from the exact (float64) values: max abs and max relative
    (relative to max(1, |x|), as the tests compare) per constant."""
    exact, fp32 = oracle_values(ply, torch.float64), oracle_values(ply, torch.float32)
    for k in exact:
        a, b = np.asarray(exact[k], dtype=np.float64).ravel(), np.asarray(fp32[k], dtype=np.float64).ravel()
        d = np.abs(a - b)
        print(f"{k:20s} max abs {d.max():.3g}  max abs / max(1, |x|) {(d / np.maximum(1, np.abs(a))).max():.3g}")


def write_swift(ply, out):
    """The constants are the exact (float64) values of the validator's formulas rounded to float32 (Float constants)
    or kept in float64 (scaling), so they do not depend on the CPU's exp/sin/cos or summation order."""
    v = oracle_values(ply, torch.float64)
    lines = [
        "// Generated by scripts/clipvalidate_oracle.py from shared/fixtures/ply/hamburger.ply",
        f"// with torch {torch.__version__} (CPU) and numpy {np.__version__}, computed in float64 (the validator's float32",
        "// formulas evaluated exactly) and rounded to Float. Do not edit.",
        "",
        "enum ValidatorOracle {",
        f"    static let count = {v['count']}",
        f"    static let scaling = {v['scaling']!r}",
        f"    static let mean: Float = {float(np.float32(v['mean']))!r}",
        f"    static let samples = {SAMPLES}",
        f"    static let activatedOpacities: [Float] = {swift_floats(v['activatedOpacities'].numpy())}",
        f"    static let activatedScales: [Float] = {swift_floats(v['activatedScales'].numpy())}",
        f"    static let activatedRotations: [Float] = {swift_floats(v['activatedRotations'].numpy())}",
        f"    static let activatedColors: [Float] = {swift_floats(v['activatedColors'].numpy())}",
        f"    static let positions: [Float] = {swift_floats(v['positions'].numpy())}",
        f"    static let scales: [Float] = {swift_floats(v['scales'].numpy())}",
        f"    static let opacities: [Float] = {swift_floats(v['opacities'].numpy())}",
        "    /// 16 row-major 4x4 world-to-camera matrices (gsplat viewmats) of the validator's orbit.",
        f"    static let viewmats: [Float] = {swift_floats(v['viewmats'].numpy())}",
        "    /// 16 row-major 3x3 intrinsics (gsplat Ks).",
        f"    static let intrinsics: [Float] = {swift_floats(v['intrinsics'].numpy())}",
        "}",
        "",
    ]
    open(out, "w").write("\n".join(lines))


def render(ply, outdir):
    from gsplat.rendering import rasterization

    dev = torch.device("cuda")
    torch.set_default_device(dev)
    points, opac, rot, scales, feat = load(read_ply(ply))
    means, nscales, nopac, _, _ = transform(points, opac, scales)
    viewmats, ks = cameras()
    bg = torch.tensor([1, 1, 1], dtype=torch.float32).expand(16, 3)
    colors, _, _ = rasterization(means.to(dev), rot.to(dev), nscales.to(dev), nopac.to(dev), feat.to(dev),
                                 viewmats.to(dev), ks.to(dev), 518, 518, 0.01, 100.0,
                                 backgrounds=bg, render_mode="RGB", packed=False)
    np.save(f"{outdir}/views_u8.npy", (colors.clip(0, 1) * 255).to(torch.uint8).cpu().numpy())
    np.save(f"{outdir}/views_f32.npy", colors.cpu().numpy())


if __name__ == "__main__":
    if sys.argv[1] == "measure":
        measure(sys.argv[2])
    else:
        mode, ply, out = sys.argv[1:4]
        {"swift": write_swift, "render": render}[mode](ply, out)
