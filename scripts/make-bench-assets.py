"""Builds the image prompts of assets/bench: five small RGBA PNGs (one object each, transparent background, as an
image prompt arrives after background removal) and one RGB JPEG on a white background (the Competition-0 upload that
`gen3d readiness` sends). Deterministic: the same files on every run.
Usage: python3 scripts/make-bench-assets.py"""
import math
import os

from PIL import Image, ImageDraw

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = os.path.join(root, "assets", "bench")
os.makedirs(os.path.join(out, "images"), exist_ok=True)
S = 96  # side in pixels: small files, still enough for the 3D stage's 518 px resize to see a shape


def shaded_disc(draw, box, base, light=(0.35, 0.3)):
    """A sphere: concentric discs brightening towards a highlight."""
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    steps = 24
    for i in range(steps):
        t = i / steps
        rr = r * (1 - t)
        ox = cx - (cx - x0) * light[0] * t
        oy = cy - (cy - y0) * light[1] * t
        c = tuple(min(255, int(v * (0.55 + 0.6 * t))) for v in base)
        draw.ellipse([ox - rr, oy - rr, ox + rr, oy + rr], fill=c + (255,))


def ball():
    im = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    shaded_disc(ImageDraw.Draw(im), (14, 14, 82, 82), (210, 40, 40))
    return im


def cube():
    im = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    top = [(48, 12), (82, 28), (48, 44), (14, 28)]
    left = [(14, 28), (48, 44), (48, 84), (14, 68)]
    right = [(48, 44), (82, 28), (82, 68), (48, 84)]
    d.polygon(top, fill=(120, 160, 240, 255))
    d.polygon(left, fill=(50, 80, 180, 255))
    d.polygon(right, fill=(30, 55, 140, 255))
    return im


def tree():
    im = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.rectangle([42, 66, 54, 88], fill=(110, 70, 30, 255))
    for k, (w, y) in enumerate([(34, 46), (28, 30), (20, 14)]):
        g = 110 + 30 * k
        d.polygon([(48 - w, y + 26), (48 + w, y + 26), (48, y)], fill=(30, g, 50, 255))
    return im


def mug():
    im = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.ellipse([56, 34, 86, 66], outline=(230, 190, 40, 255), width=7)
    d.rectangle([16, 24, 66, 80], fill=(240, 200, 50, 255))
    d.ellipse([16, 16, 66, 32], fill=(200, 160, 30, 255))
    d.ellipse([20, 18, 62, 30], fill=(70, 40, 20, 255))
    d.ellipse([16, 72, 66, 88], fill=(240, 200, 50, 255))
    return im


def ring():
    im = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    for i in range(12):
        a = 2 * math.pi * i / 12
        x, y = 48 + 28 * math.cos(a), 48 + 18 * math.sin(a)
        shade = int(120 + 100 * (0.5 + 0.5 * math.sin(a)))
        d.ellipse([x - 11, y - 11, x + 11, y + 11], fill=(shade, 60, shade, 255))
    return im


for name, make in [("red-ball", ball), ("blue-cube", cube), ("green-tree", tree), ("yellow-mug", mug),
                   ("purple-ring", ring)]:
    make().save(os.path.join(out, "images", name + ".png"), optimize=True)

# The Competition-0 upload: an RGB photo-like JPEG (no alpha, white background), so the daemon's background
# removal runs.
photo = Image.new("RGB", (128, 128), (255, 255, 255))
sphere = ball().resize((112, 112), Image.BICUBIC)
photo.paste(sphere, (8, 8), sphere)
photo.save(os.path.join(out, "photo.jpg"), quality=85)
