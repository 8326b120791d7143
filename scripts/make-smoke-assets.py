"""Builds assets/smoke: the tiny random-weight networks of the oracle fixtures (../shared/fixtures), laid out like
the real hub folders, so the smoke pipeline goes through the same loaders as real checkpoints.
These weights are random: the smoke pipeline exercises every stage but generates nothing meaningful.
Usage: python3 scripts/make-smoke-assets.py [FIXTURES_DIR]"""
import json, os, shutil, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fixtures = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "fixtures")
out = os.path.join(root, "assets", "smoke")
shutil.rmtree(out, ignore_errors=True)


def copy(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)


def args(path):
    return json.load(open(path))["args"]


# TRELLIS: pipeline.json + ckpts/<name>.json/.safetensors, and DINOv2 in the HF layout.
t = os.path.join(fixtures, "trellis")
pipe = json.load(open(os.path.join(t, "pipeline.json")))
models = {}
for role, stem in pipe["models"].items():
    copy(os.path.join(t, stem + ".json"), os.path.join(out, "trellis", "ckpts", stem + ".json"))
    copy(os.path.join(t, stem + ".safetensors"), os.path.join(out, "trellis", "ckpts", stem + ".safetensors"))
    models[role] = "ckpts/" + stem
hub = {"name": "TrellisImageTo3DPipeline", "args": {
    "models": models, "sparse_structure_sampler": pipe["sparse_structure_sampler"], "slat_sampler": pipe["slat_sampler"],
    "slat_normalization": pipe["slat_normalization"], "image_cond_model": "dinov2_tiny"}}
json.dump(hub, open(os.path.join(out, "trellis", "pipeline.json"), "w"), indent=2)
for f in ("config.json", "model.safetensors"):
    copy(os.path.join(t, "dinov2_tiny", f), os.path.join(out, "dinov2", f))

# FLUX: a diffusers-format folder (tokenizers are not part of it: the smoke tokenizer hashes bytes to ids).
f = os.path.join(fixtures, "flux")
p = args(os.path.join(f, "pipeline.json"))
components = {"transformer": ("flux_transformer", "diffusion_pytorch_model.safetensors"),
              "vae": ("vae", "diffusion_pytorch_model.safetensors"),
              "text_encoder": ("clip_text", "model.safetensors"),
              "text_encoder_2": ("t5_encoder", "model.safetensors")}
for folder, (stem, weights) in components.items():
    os.makedirs(os.path.join(out, "flux", folder), exist_ok=True)
    json.dump(args(os.path.join(f, stem + ".json")), open(os.path.join(out, "flux", folder, "config.json"), "w"), indent=2)
    copy(os.path.join(f, stem + ".safetensors"), os.path.join(out, "flux", folder, weights))
os.makedirs(os.path.join(out, "flux", "scheduler"), exist_ok=True)
json.dump(p["scheduler"], open(os.path.join(out, "flux", "scheduler", "scheduler_config.json"), "w"), indent=2)
json.dump({"_class_name": "FluxPipeline", "smoke": True, "height": p["height"], "width": p["width"]},
          open(os.path.join(out, "flux", "model_index.json"), "w"), indent=2)

# BiRefNet: model.safetensors + config.json (the tiny widths are read from the weight shapes).
b = os.path.join(fixtures, "birefnet")
if os.path.exists(os.path.join(b, "tiny.safetensors")):
    copy(os.path.join(b, "tiny.safetensors"), os.path.join(out, "birefnet", "model.safetensors"))
    copy(os.path.join(b, "tiny_config.json"), os.path.join(out, "birefnet", "config.json"))

open(os.path.join(out, "README.md"), "w").write(
    "# Smoke pipeline weights\n\nTiny networks with RANDOM weights (copied from the oracle fixtures by "
    "scripts/make-smoke-assets.py), laid out like the real hub folders. `gen3d serve` falls back to them when the real "
    "weights are missing, so the service and its routes work offline; /health then reports `\"status\": \"smoke\"` "
    "and every answer carries `X-Smoke-Pipeline: true`. Their output is not a real generation.\n")
print("wrote", out)
