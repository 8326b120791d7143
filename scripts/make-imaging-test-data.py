#!/usr/bin/env python3
"""Generates the ImagingTests resources with Pillow as the oracle.

Usage: python3 scripts/make-imaging-test-data.py [output-dir]
       (default Tests/ImagingTests/Resources; needs `pip install pillow numpy`)

Writes small PNG/JPEG inputs, the pixels our decoder must produce for them (`*.expected`, raw bytes),
and Pillow `Image.resize` references, all listed in manifest.json. The 16-bit, gray+alpha-16 and
interlaced PNGs come from the minimal writer below because Pillow cannot write them.
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
import PIL
from PIL import Image

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "Tests", "ImagingTests", "Resources")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20251125)
manifest = {"pillow": PIL.__version__, "decode": [], "resize": []}

W, H = 13, 9


def write_png(path, array, color_type, bit_depth, interlace=False):
    """Minimal PNG writer (filter 0 on every row) for layouts Pillow cannot save."""
    height, width = array.shape[:2]

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    def raw_rows(a):
        if bit_depth == 16:
            a = a.astype(">u2")
        return b"".join(b"\x00" + a[y].tobytes() for y in range(a.shape[0]))

    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        data = b"".join(raw_rows(array[y0::dy, x0::dx]) for x0, y0, dx, dy in passes
                        if array[y0::dy, x0::dx].size)
    else:
        data = raw_rows(array)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data, 9)) + chunk(b"IEND", b""))


def add_decode_case(name, expected, has_alpha):
    expected = np.ascontiguousarray(expected, dtype=np.uint8)
    if expected.ndim == 2:
        expected = expected[:, :, None]
    with open(os.path.join(OUT, name + ".expected"), "wb") as f:
        f.write(expected.tobytes())
    manifest["decode"].append({"file": name, "width": int(expected.shape[1]), "height": int(expected.shape[0]),
                               "channels": int(expected.shape[2]), "hasAlpha": has_alpha})


def smooth(h, w, c, noise=24):
    """Gradients plus noise: compresses well, still exercises every filter tap."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1) + 37 * k) % 256 * 0.7 + (y * 255 // max(h - 1, 1)) * 0.3
                     for k in range(c)], axis=-1)
    return np.clip(base + rng.integers(-noise, noise + 1, base.shape), 0, 255).astype(np.uint8)


# --- PNG decode cases --------------------------------------------------------------------------
gray = rng.integers(0, 256, (H, W), dtype=np.uint8)
rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
rgba = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
gray16 = rng.integers(0, 65536, (H, W), dtype=np.uint16)
rgb16 = rng.integers(0, 65536, (H, W, 3), dtype=np.uint16)
rgba16 = rng.integers(0, 65536, (H, W, 4), dtype=np.uint16)
la16 = rng.integers(0, 65536, (H, W, 2), dtype=np.uint16)

Image.fromarray(gray, "L").save(os.path.join(OUT, "gray8.png"))
add_decode_case("gray8.png", gray, False)

bits = rng.integers(0, 2, (H, W)).astype(bool)
Image.fromarray(bits).save(os.path.join(OUT, "gray1.png"))
add_decode_case("gray1.png", bits.astype(np.uint8) * 255, False)

la = rng.integers(0, 256, (H, W, 2), dtype=np.uint8)
Image.fromarray(la, "LA").save(os.path.join(OUT, "gray_alpha8.png"))
add_decode_case("gray_alpha8.png", np.stack([la[..., 0]] * 3 + [la[..., 1]], axis=-1), True)

Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "rgb8.png"))
add_decode_case("rgb8.png", rgb, False)

Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "rgba8.png"))
add_decode_case("rgba8.png", rgba, True)

write_png(os.path.join(OUT, "gray16.png"), gray16, 0, 16)
add_decode_case("gray16.png", (gray16 >> 8).astype(np.uint8), False)
write_png(os.path.join(OUT, "rgb16.png"), rgb16, 2, 16)
add_decode_case("rgb16.png", (rgb16 >> 8).astype(np.uint8), False)
write_png(os.path.join(OUT, "rgba16.png"), rgba16, 6, 16)
add_decode_case("rgba16.png", (rgba16 >> 8).astype(np.uint8), True)
write_png(os.path.join(OUT, "gray_alpha16.png"), la16, 4, 16)
la16_8 = (la16 >> 8).astype(np.uint8)
add_decode_case("gray_alpha16.png", np.stack([la16_8[..., 0]] * 3 + [la16_8[..., 1]], axis=-1), True)
write_png(os.path.join(OUT, "rgb8_interlaced.png"), rgb, 2, 8, interlace=True)
add_decode_case("rgb8_interlaced.png", rgb, False)

palette = rng.integers(0, 256, (16, 3), dtype=np.uint8)
indices = rng.integers(0, 16, (H, W), dtype=np.uint8)
p = Image.fromarray(indices, "P")
p.putpalette(palette.flatten().tolist())
p.save(os.path.join(OUT, "palette.png"), bits=4)
add_decode_case("palette.png", palette[indices], False)

alphas = rng.integers(0, 256, 16, dtype=np.uint8)
alphas[3] = 0
p.save(os.path.join(OUT, "palette_trns.png"), transparency=bytes(alphas.tolist()))
oracle = np.asarray(Image.open(os.path.join(OUT, "palette_trns.png")).convert("RGBA"))
assert (oracle == np.concatenate([palette[indices], alphas[indices][..., None]], axis=-1)).all()
add_decode_case("palette_trns.png", oracle, True)

key = int(gray[0, 0])
Image.fromarray(gray, "L").save(os.path.join(OUT, "gray_trns.png"), transparency=key)
oracle = np.asarray(Image.open(os.path.join(OUT, "gray_trns.png")).convert("RGBA"))
assert (oracle[..., 3] == np.where(gray == key, 0, 255)).all()
add_decode_case("gray_trns.png", oracle, True)

rkey = tuple(int(v) for v in rgb[1, 2])
Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "rgb_trns.png"), transparency=rkey)
oracle = np.asarray(Image.open(os.path.join(OUT, "rgb_trns.png")).convert("RGBA"))
add_decode_case("rgb_trns.png", oracle, True)

# --- JPEG decode cases (expected = Pillow's decode) -------------------------------------------------
photo = smooth(24, 32, 3)
Image.fromarray(photo, "RGB").save(os.path.join(OUT, "rgb.jpg"), quality=90)
add_decode_case("rgb.jpg", np.asarray(Image.open(os.path.join(OUT, "rgb.jpg")).convert("RGB")), False)
Image.fromarray(photo, "RGB").save(os.path.join(OUT, "rgb_progressive.jpg"), quality=85, progressive=True)
add_decode_case("rgb_progressive.jpg", np.asarray(Image.open(os.path.join(OUT, "rgb_progressive.jpg")).convert("RGB")), False)
Image.fromarray(photo[..., 1], "L").save(os.path.join(OUT, "gray.jpg"), quality=90)
add_decode_case("gray.jpg", np.asarray(Image.open(os.path.join(OUT, "gray.jpg"))), False)
Image.fromarray(smooth(24, 32, 4), "CMYK").save(os.path.join(OUT, "cmyk.jpg"), quality=90)
cmyk = Image.open(os.path.join(OUT, "cmyk.jpg"))
assert cmyk.mode == "CMYK"
add_decode_case("cmyk.jpg", np.asarray(cmyk.convert("RGB")), False)

# --- Resize references ------------------------------------------------------------------------------
SRC_W, SRC_H = 40, 30
sources = {"L": smooth(SRC_H, SRC_W, 1)[..., 0], "RGB": smooth(SRC_H, SRC_W, 3), "RGBA": smooth(SRC_H, SRC_W, 4)}
sources["RGBA"][..., 3][sources["RGBA"][..., 3] < 40] = 0  # fully transparent patches
sources["RGBA"][:4, :, 3] = 255
for mode, array in sources.items():
    Image.fromarray(array, mode).save(os.path.join(OUT, f"resize_src_{mode}.png"))
filters = {"box": Image.Resampling.BOX, "bilinear": Image.Resampling.BILINEAR,
           "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
# down, up, single axis, x-up/y-down and y-shrinks-most (the last two depend on Pillow's pass order).
sizes = [(17, 13), (61, 45), (40, 14), (50, 20), (37, 9)]
for mode in sources:
    image = Image.open(os.path.join(OUT, f"resize_src_{mode}.png"))
    for fname, f in filters.items():
        for w, h in sizes:
            name = f"resize_{mode}_{fname}_{w}x{h}.png"
            image.resize((w, h), f).save(os.path.join(OUT, name))
            manifest["resize"].append({"file": name, "source": f"resize_src_{mode}.png", "filter": fname,
                                       "width": w, "height": h})

with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
print(f"wrote {len(manifest['decode'])} decode cases and {len(manifest['resize'])} resize references to {OUT}"
      f" with Pillow {PIL.__version__}")
