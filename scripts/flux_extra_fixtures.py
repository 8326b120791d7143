#!/usr/bin/env python3
"""Oracle cases for FLUX paths the shared fixtures do not cover, in the shared fixture format
(fixtures/FORMAT.md), written to Tests/ModelsTests/Resources/flux_extra:

  vae_quant      AutoencoderKL with quant_conv/post_quant_conv: encode (mean, logvar) and decode
  clip_eos       CLIPTextModel with a non-legacy eos_token_id, batch 2, plus clip_skip=1 hidden state
  t5_fp16        T5EncoderModel loaded in float16 (wo kept in fp32, fp16 clamps) with activations that overflow
  flux_guidance  FluxTransformer2DModel with guidance_embeds, batch 2 with per-sample timesteps
  pipeline_dev   FluxPipeline with dynamic shifting, guidance, batch 2, latents drawn from a seeded generator

Expected outputs are computed in float64 (the fp32 weights and inputs run through `module.double()`) and stored as
float32, so they do not carry one machine's fp32 kernel choices. Where the official code itself casts to float32
(the Euler step, the seeded latent draw, t * f in the sinusoidal timestep projection) the float64 run does the same;
the projection's frequencies are exp in float64 rounded to float32, as the Swift code computes them (diffusers' fp32
exp differs by an ulp between MKL paths, which moved flux_guidance's output by up to 1.6e-4).
t5_fp16 is the exception: its meaning is transformers' float16 path (overflow clamps), so its expected output is
that float16 run. Weights are realistic in scale (biases ~N(0, 0.02), norm gains 1 + N(0, 0.05), matrices
N(0, 1/fan_in)) so every output is O(1) and the cases are well conditioned.

Environment (pinned, installs on top of .deps/torch-venv's torch): scripts/oracle-env.sh, then
    PYTHONPATH=.deps/oracle-site .deps/torch-venv/bin/python scripts/flux_extra_fixtures.py            # write
    PYTHONPATH=.deps/oracle-site .deps/torch-venv/bin/python scripts/flux_extra_fixtures.py --measure  # spreads
`--measure` writes nothing: it prints max |fp32 reference - stored expected| per output, which is the spread the
tests' tolerances rest on (for flux_guidance and pipeline_dev also with the frequencies made as the Swift code makes
them); run it under OMP_NUM_THREADS=1 and MKL_ENABLE_INSTRUCTIONS=AVX2 / SSE4_2 too.
The measured table is in Tests/ModelsTests/Resources/flux_extra/README.md.
"""
import contextlib
import copy
import json
import math
import os
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

import diffusers.models.embeddings as embeddings
import diffusers.pipelines.flux.pipeline_flux as pipeline_flux
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelsTests", "Resources", "flux_extra")
MEASURE = "--measure" in sys.argv


def randomize(module, seed, scale=1.0):
    """Every parameter random (no zero-initialised layers), deterministic, at realistic scales."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if p.ndim == 1 and name.endswith("bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(1.0 + 0.05 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * scale / fan_in ** 0.5)


def to64(x):
    return x.double() if torch.is_tensor(x) and x.is_floating_point() else x


def float64_timestep_embedding(timesteps, embedding_dim, flip_sin_to_cos=False, downscale_freq_shift=1, scale=1,
                               max_period=10000):
    """diffusers' get_timestep_embedding with the frequencies' exp in float64, rounded to float32 (correctly rounded,
    as the Swift code makes them: fp32 exp differs by an ulp between MKL paths, and with t*1000 up to 3500 one ulp
    moves a FLUX output by ~1e-4), the official fp32 rounding of t * f kept, and sin/cos in float64."""
    half = embedding_dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=torch.float32, device=timesteps.device)
    exponent = exponent / (half - downscale_freq_shift)
    frequencies = torch.exp(exponent.double()).float()
    args = (timesteps[:, None].float() * frequencies[None, :]).double() * scale
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if embedding_dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1, 0, 0))
    return emb


def rounded_frequency_embedding(timesteps, embedding_dim, flip_sin_to_cos=False, downscale_freq_shift=1, scale=1,
                                max_period=10000):
    """The official fp32 projection except for the frequencies, made as the Swift code makes them (--measure only)."""
    half = embedding_dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=torch.float32, device=timesteps.device)
    frequencies = torch.exp((exponent / (half - downscale_freq_shift)).double()).float()
    args = timesteps[:, None].float() * frequencies[None, :] * scale
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    return emb


@contextlib.contextmanager
def float64_timesteps(projection=float64_timestep_embedding):
    official = embeddings.get_timestep_embedding
    embeddings.get_timestep_embedding = projection
    try:
        yield
    finally:
        embeddings.get_timestep_embedding = official


def in_float64(module, fn, inputs):
    """fn(module, **inputs) with a float64 copy of the module and float64 inputs; results as float32."""
    m64 = copy.deepcopy(module).double()
    with torch.no_grad(), float64_timesteps():
        out = fn(m64, **{k: to64(v) for k, v in inputs.items()})
    return {k: v.float() for k, v in out.items()}


def in_float32(module, fn, inputs):
    with torch.no_grad():
        return fn(module, **inputs)


def write_case(stem, name, args, weights, io, extra=None):
    """Writes the case, or with --measure compares the fp32 outputs of this run against the stored ones."""
    if MEASURE:
        return
    os.makedirs(OUT, exist_ok=True)
    case = {"name": name, "args": args}
    case.update(extra or {})
    with open(os.path.join(OUT, stem + ".json"), "w") as f:
        json.dump(case, f, indent=2)
    if weights is not None:
        save_file({k: v.contiguous() for k, v in weights.items()}, os.path.join(OUT, stem + ".safetensors"))
    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(OUT, stem + "_io.safetensors"))


def report(stem, fp32, reference, label="fp32"):
    """Prints max |fp32 run - reference| per output (reference: float64 results, or the stored ones)."""
    if MEASURE:
        stored = load_file(os.path.join(OUT, stem + "_io.safetensors"))
        reference = {k: stored[k] for k in fp32}
    for k in sorted(fp32):
        d = (fp32[k].double() - reference[k].double()).abs().max().item()
        print(f"{stem:14s} {k:28s} max|{label} - expected| = {d:.3g}  (max|expected| = "
              f"{reference[k].abs().max().item():.3g})")


def vae_quant():
    args = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=[8, 16], layers_per_block=1,
                down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                norm_num_groups=4, use_quant_conv=True, use_post_quant_conv=True, scaling_factor=0.3611,
                shift_factor=0.1159, sample_size=16)
    vae = AutoencoderKL(**args).eval()
    randomize(vae, 1)
    g = torch.Generator().manual_seed(11)
    x = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    z = torch.randn(2, 4, 8, 8, generator=g)

    def run(m, x, z):
        dist = m.encode(x).latent_dist
        return {"output.latent_mean": dist.mean, "output.latent_logvar": dist.logvar, "output": m.decode(z).sample}

    expected = in_float64(vae, run, {"x": x, "z": z})
    report("vae_quant", in_float32(vae, run, {"x": x, "z": z}), expected)
    write_case("vae_quant", "AutoencoderKL", args, vae.state_dict(), {"input.x": x, "input.z": z, **expected})
    return vae, args


def clip_eos():
    cfg = CLIPTextConfig(vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                         num_attention_heads=2, max_position_embeddings=16, hidden_act="gelu", eos_token_id=7,
                         bos_token_id=6, pad_token_id=7)
    model = CLIPTextModel(cfg).eval()
    randomize(model, 2)
    ids = torch.tensor([[6, 40, 41, 99, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7],
                        [6, 12, 13, 14, 15, 16, 17, 80, 7, 7, 7, 7, 7, 7, 7, 7]])

    def run(m, ids):
        out = m(ids, output_hidden_states=True)
        text = m.text_model if hasattr(m, "text_model") else m
        return {"output.last_hidden_state": out.last_hidden_state, "output.pooler_output": out.pooler_output,
                "output.clip_skip_1": text.final_layer_norm(out.hidden_states[-2])}

    expected = in_float64(model, run, {"ids": ids})
    report("clip_eos", in_float32(model, run, {"ids": ids}), expected)
    write_case("clip_eos", "CLIPTextModel", cfg.to_dict(), model.state_dict(), {"input.input_ids": ids, **expected})


def t5_fp16():
    cfg = T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
                   relative_attention_num_buckets=16, relative_attention_max_distance=32,
                   feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False)
    model = T5EncoderModel(cfg).eval()
    randomize(model, 3)
    with torch.no_grad():
        # Embeddings near the fp16 limit so the first residual sum overflows and the clamp matters.
        model.shared.weight.mul_(3e4)
        model.encoder.block[0].layer[0].SelfAttention.o.weight.mul_(1e5)
    weights = {k: v.clone() for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        half = T5EncoderModel.from_pretrained(d, dtype=torch.float16).eval()
    assert half.encoder.block[0].layer[1].DenseReluDense.wo.weight.dtype == torch.float32
    ids = torch.tensor([[5, 17, 3, 60, 22, 9, 1, 0, 0, 0]])
    # The case is the float16 path itself (clamps included), so the expected output is transformers' fp16 run;
    # there is no float64 counterpart (in float64 nothing overflows and nothing is clamped).
    out = in_float32(half, lambda m, ids: {"output.last_hidden_state": m(ids).last_hidden_state}, {"ids": ids})
    assert torch.isfinite(out["output.last_hidden_state"]).all()
    report("t5_fp16", out, out)
    write_case("t5_fp16", "T5EncoderModel", cfg.to_dict(), weights, {"input.input_ids": ids, **out},
               {"dtype": "float16"})


def flux_guidance():
    args = dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=8,
                num_attention_heads=2, joint_attention_dim=16, pooled_projection_dim=8, guidance_embeds=True,
                axes_dims_rope=[2, 2, 4])
    model = FluxTransformer2DModel(**args).eval()
    randomize(model, 4)
    g = torch.Generator().manual_seed(44)
    img_ids = torch.zeros(4, 4, 3)
    img_ids[..., 1] += torch.arange(4)[:, None]
    img_ids[..., 2] += torch.arange(4)[None, :]
    inputs = {"hidden_states": torch.randn(2, 16, 16, generator=g),
              "encoder_hidden_states": torch.randn(2, 5, 16, generator=g),
              "pooled_projections": torch.randn(2, 8, generator=g),
              "timestep": torch.tensor([0.9, 0.3]), "guidance": torch.tensor([3.5, 1.0]),
              "img_ids": img_ids.reshape(16, 3), "txt_ids": torch.zeros(5, 3)}

    def run(m, **kw):
        return {"output": m(**kw).sample}

    expected = in_float64(model, run, inputs)
    report("flux_guidance", in_float32(model, run, inputs), expected)
    if MEASURE:
        with float64_timesteps(rounded_frequency_embedding):
            report("flux_guidance", in_float32(model, run, inputs), expected, "fp32, Swift's frequencies")
    write_case("flux_guidance", "FluxTransformer2DModel", args, model.state_dict(),
               {**{"input." + k: v for k, v in inputs.items()}, **expected})
    return model, args


def pipeline_dev(transformer, vae):
    sched = dict(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                 base_image_seq_len=256, max_image_seq_len=4096)
    g = torch.Generator().manual_seed(1234)
    pe = torch.randn(2, 5, 16, generator=g)
    pooled = torch.randn(2, 8, generator=g)

    def run(dtype):
        pipe = FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(**sched), vae=copy.deepcopy(vae).to(dtype),
                            text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None,
                            transformer=copy.deepcopy(transformer).to(dtype))
        steps = []
        cb = lambda p, i, t, kw: (steps.append(kw["latents"].float()), kw)[1]
        with torch.no_grad():
            image = pipe(prompt_embeds=pe.to(dtype), pooled_prompt_embeds=pooled.to(dtype), height=16, width=16,
                         num_inference_steps=3, guidance_scale=3.5, generator=torch.Generator().manual_seed(2024),
                         output_type="pt", callback_on_step_end=cb).images
        out = {"output.image": image.float(), "output.sigmas": pipe.scheduler.sigmas,
               "output.timesteps": pipe.scheduler.timesteps}
        out.update({f"inter.latents_after_step{i}": s for i, s in enumerate(steps)})
        return out

    # The seeded latents are drawn in float32 as the fp32 pipeline (and the Swift one) draws them, then cast:
    # torch draws a different sequence for a float64 randn.
    draw = pipeline_flux.randn_tensor
    pipeline_flux.randn_tensor = lambda shape, generator=None, device=None, dtype=None, **kw: \
        draw(shape, generator=generator, device=device, dtype=torch.float32, **kw).to(dtype)
    try:
        with float64_timesteps():
            expected = run(torch.float64)
    finally:
        pipeline_flux.randn_tensor = draw
    report("pipeline_dev", run(torch.float32), expected)
    if MEASURE:
        with float64_timesteps(rounded_frequency_embedding):
            report("pipeline_dev", run(torch.float32), expected, "fp32, Swift's frequencies")
    args = {"num_inference_steps": 3, "guidance_scale": 3.5, "height": 16, "width": 16, "vae_scale_factor": 2,
            "seed": 2024, "scheduler": sched,
            "components": {"transformer": "flux_guidance", "vae": "vae_quant"}}
    write_case("pipeline_dev", "FluxPipeline", args, None,
               {"input.prompt_embeds": pe, "input.pooled_prompt_embeds": pooled, **expected})


if __name__ == "__main__":
    torch.manual_seed(0)
    vae, _ = vae_quant()
    clip_eos()
    t5_fp16()
    transformer, _ = flux_guidance()
    pipeline_dev(transformer, vae)
    if not MEASURE:
        print("wrote", sorted(os.listdir(OUT)))
