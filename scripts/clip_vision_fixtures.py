#!/usr/bin/env python3
"""Oracle cases for the CLIP vision tower (transformers CLIPVisionModel: ImageDream's image encoder reads its
hidden_states[-2]), whose encoder layers shared/fixtures/lgm (a one-layer tower) does not cover. Written in the shared
fixture format (fixtures/FORMAT.md) to Tests/ModelsTests/Resources/clip_vision:

  clip_vision_gelu        tiny CLIPVisionModel, 3 layers, hidden_act "gelu" (laion ViT-H/14, ImageDream's encoder)
  clip_vision_quick_gelu  the same weights with hidden_act "quick_gelu" (OpenAI CLIP); it names the gelu case's
                          weights file ("weights"), which keeps the folder under 1 MB

Each case: args = the config.json transformers 5.24 writes for the model (save_pretrained), weights with the published
(transformers 4) key names `vision_model.*` as the hub image_encoder/model.safetensors stores them (transformers 5's
CLIPVisionModel saves them without the prefix but loads this layout; the script checks it loads strictly and
bit-exactly), io:
  input.pixel_values           [2, 3, 32, 32]
  output.hidden_states.<i>     i = 0..3: the embeddings after pre_layrnorm, then each layer's output;
                               hidden_states.2 = hidden_states[-2], what ImageDream reads
  output.last_hidden_state     [2, 17, 64] (= hidden_states.3, no post_layernorm)
  output.pooler_output         [2, 64] = post_layernorm(last_hidden_state[:, 0])

Weights: every parameter random and live (matrices N(0, 1/fan_in), biases N(0, 0.1), layer-norm gains 1 + N(0, 0.2),
class embedding N(0, 1), position embedding N(0, 0.25)), stored in float32. The expected outputs are computed in
float64 (the loaded tower and the inputs cast with .double(), eager attention) and stored as float32, so they carry
no fp32 kernel choice of the machine that wrote them.

Environment: scripts/oracle-env.sh (pinned transformers 5.24.0 on top of .deps/torch-venv's torch), then
    PYTHONPATH=.deps/oracle-site .deps/torch-venv/bin/python scripts/clip_vision_fixtures.py            # write
    PYTHONPATH=.deps/oracle-site .deps/torch-venv/bin/python scripts/clip_vision_fixtures.py --measure  # spreads
`--measure` writes nothing: it prints max |fp32 transformers run - stored expected| per output, the spread the
tests' tolerance rests on; run it under OMP_NUM_THREADS=1 and MKL_ENABLE_INSTRUCTIONS=AVX2 / SSE4_2 too. The
measured table is in Tests/ModelsTests/Resources/clip_vision/README.md.
"""
import copy
import json
import os
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file
from transformers import CLIPVisionConfig, CLIPVisionModel

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelsTests", "Resources", "clip_vision")

ARGS = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4, num_channels=3,
            image_size=32, patch_size=8, layer_norm_eps=1e-5)
PREFIX = "vision_model."
WEIGHTS = "clip_vision_gelu.safetensors"
MEASURE = "--measure" in sys.argv


def random_tensor(key, shape, g):
    if key == "embeddings.class_embedding":
        return torch.randn(shape, generator=g)
    if key == "embeddings.position_embedding.weight":
        return 0.25 * torch.randn(shape, generator=g)
    if key.endswith(".bias"):
        return 0.1 * torch.randn(shape, generator=g)
    if len(shape) == 1:
        return 1.0 + 0.2 * torch.randn(shape, generator=g)
    fan_in = 1
    for n in shape[1:]:
        fan_in *= n
    return torch.randn(shape, generator=g) / fan_in ** 0.5


def random_weights(seed):
    """The published-layout state dict (`vision_model.*`) of a random tower."""
    shapes = {k: list(v.shape) for k, v in CLIPVisionModel(CLIPVisionConfig(**ARGS)).state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    return {PREFIX + k: random_tensor(k, shapes[k], g) for k in sorted(shapes)}


def load_tower(weights, hidden_act):
    """transformers' own loader on the stored file: strict, every key used, values bit-exact. Returns the model and
    its config.json as written by save_pretrained."""
    with tempfile.TemporaryDirectory() as d:
        CLIPVisionConfig(**ARGS, hidden_act=hidden_act).save_pretrained(d)
        save_file(weights, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        model, info = CLIPVisionModel.from_pretrained(d, output_loading_info=True, attn_implementation="eager")
        with open(os.path.join(d, "config.json")) as f:
            config = json.load(f)
    assert not any(info.values()), info
    state = model.state_dict()
    assert sorted(PREFIX + k for k in state) == sorted(weights)
    assert all(torch.equal(weights[PREFIX + k], v) for k, v in state.items())
    return model.eval(), config


def outputs(model, pixel_values):
    with torch.no_grad():
        out = model(pixel_values=pixel_values, output_hidden_states=True)
    hidden = out.hidden_states
    assert len(hidden) == ARGS["num_hidden_layers"] + 1
    assert torch.equal(hidden[-1], out.last_hidden_state)
    io = {"output.last_hidden_state": out.last_hidden_state, "output.pooler_output": out.pooler_output}
    io.update({f"output.hidden_states.{i}": h for i, h in enumerate(hidden)})
    return {k: v.float() for k, v in io.items()}


def case(stem, weights, hidden_act, pixel_values):
    model, config = load_tower(weights, hidden_act)
    fp32 = outputs(model, pixel_values)
    if MEASURE:
        stored = load_file(os.path.join(OUT, stem + "_io.safetensors"))
        for k in sorted(fp32):
            d = (fp32[k].double() - stored[k].double()).abs().max().item()
            print(f"{stem:24s} {k:26s} max|fp32 - expected| = {d:.3g}  (max|expected| = {stored[k].abs().max():.3g})")
        return stored["output.last_hidden_state"]
    io = {"input.pixel_values": pixel_values, **outputs(copy.deepcopy(model).double(), pixel_values.double())}
    os.makedirs(OUT, exist_ok=True)
    spec = {"name": "CLIPVisionModel", "args": config, "weights": WEIGHTS,
            "note": "hidden_states.2 = hidden_states[-2] (ImageDream's image embedding); "
                    "see scripts/clip_vision_fixtures.py"}
    with open(os.path.join(OUT, stem + ".json"), "w") as f:
        json.dump(spec, f, indent=1)
    save_file({k: v.clone().contiguous() for k, v in io.items()}, os.path.join(OUT, stem + "_io.safetensors"))
    return io["output.last_hidden_state"]


if __name__ == "__main__":
    weights = random_weights(seed=41)
    os.makedirs(OUT, exist_ok=True)
    if not MEASURE:
        save_file(weights, os.path.join(OUT, WEIGHTS))
    g = torch.Generator().manual_seed(42)
    pixel_values = torch.randn(2, 3, ARGS["image_size"], ARGS["image_size"], generator=g)
    gelu = case("clip_vision_gelu", weights, "gelu", pixel_values)
    quick = case("clip_vision_quick_gelu", weights, "quick_gelu", pixel_values)
    print(f"gelu vs quick_gelu last_hidden_state: max abs difference {(gelu - quick).abs().max().item():.3g}")
    if MEASURE:
        sys.exit(0)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")
