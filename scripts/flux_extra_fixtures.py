#!/usr/bin/env python3
"""Oracle cases for FLUX paths the shared fixtures do not cover, in the shared fixture format
(fixtures/FORMAT.md), written to Tests/ModelsTests/Resources/flux_extra:

  vae_quant      AutoencoderKL with quant_conv/post_quant_conv: encode (mean, logvar) and decode
  clip_eos       CLIPTextModel with a non-legacy eos_token_id, batch 2, plus clip_skip=1 hidden state
  t5_fp16        T5EncoderModel loaded in float16 (wo kept in fp32, fp16 clamps) with activations that overflow
  flux_guidance  FluxTransformer2DModel with guidance_embeds, batch 2 with per-sample timesteps
  pipeline_dev   FluxPipeline with dynamic shifting, guidance, batch 2, latents drawn from a seeded generator

Needs torch, diffusers 0.42.1 and transformers 5.24 (the versions of shared/fixtures/flux):
    python scripts/flux_extra_fixtures.py
"""
import json
import os
import tempfile

import torch
from safetensors.torch import save_file

from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelsTests", "Resources", "flux_extra")


def randomize(module, seed, scale=1.0):
    """Every parameter random (no zero-initialised layers), deterministic."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(module.named_parameters()):
            if p.ndim == 1 and p.numel() > 0:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel() if p.ndim > 1 else 1
                p.copy_(torch.randn(p.shape, generator=g) * scale / fan_in ** 0.5)


def write_case(stem, name, args, weights, io, extra=None):
    os.makedirs(OUT, exist_ok=True)
    case = {"name": name, "args": args}
    case.update(extra or {})
    with open(os.path.join(OUT, stem + ".json"), "w") as f:
        json.dump(case, f, indent=2)
    if weights is not None:
        save_file({k: v.contiguous() for k, v in weights.items()}, os.path.join(OUT, stem + ".safetensors"))
    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(OUT, stem + "_io.safetensors"))


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
    with torch.no_grad():
        dist = vae.encode(x).latent_dist
        dec = vae.decode(z).sample
    write_case("vae_quant", "AutoencoderKL", args, vae.state_dict(),
               {"input.x": x, "output.latent_mean": dist.mean, "output.latent_logvar": dist.logvar,
                "input.z": z, "output": dec})
    return vae, args


def clip_eos():
    cfg = CLIPTextConfig(vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                         num_attention_heads=2, max_position_embeddings=16, hidden_act="gelu", eos_token_id=7,
                         bos_token_id=6, pad_token_id=7)
    model = CLIPTextModel(cfg).eval()
    randomize(model, 2)
    ids = torch.tensor([[6, 40, 41, 99, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7],
                        [6, 12, 13, 14, 15, 16, 17, 80, 7, 7, 7, 7, 7, 7, 7, 7]])
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
        penultimate = model.text_model.final_layer_norm(out.hidden_states[-2]) if hasattr(model, "text_model") \
            else model.final_layer_norm(out.hidden_states[-2])
    write_case("clip_eos", "CLIPTextModel", cfg.to_dict(), model.state_dict(),
               {"input.input_ids": ids, "output.last_hidden_state": out.last_hidden_state,
                "output.pooler_output": out.pooler_output, "output.clip_skip_1": penultimate})


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
    with torch.no_grad():
        out = half(ids).last_hidden_state
    assert torch.isfinite(out).all()
    write_case("t5_fp16", "T5EncoderModel", cfg.to_dict(), weights,
               {"input.input_ids": ids, "output.last_hidden_state": out}, {"dtype": "float16"})


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
    io = {"input.hidden_states": torch.randn(2, 16, 16, generator=g),
          "input.encoder_hidden_states": torch.randn(2, 5, 16, generator=g),
          "input.pooled_projections": torch.randn(2, 8, generator=g),
          "input.timestep": torch.tensor([0.9, 0.3]), "input.guidance": torch.tensor([3.5, 1.0]),
          "input.img_ids": img_ids.reshape(16, 3), "input.txt_ids": torch.zeros(5, 3)}
    with torch.no_grad():
        io["output"] = model(**{k[6:]: v for k, v in io.items()}).sample
    write_case("flux_guidance", "FluxTransformer2DModel", args, model.state_dict(), io)
    return model, args


def pipeline_dev(transformer, vae):
    sched = dict(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                 base_image_seq_len=256, max_image_seq_len=4096)
    scheduler = FlowMatchEulerDiscreteScheduler(**sched)
    pipe = FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=None, tokenizer=None, text_encoder_2=None,
                        tokenizer_2=None, transformer=transformer)
    g = torch.Generator().manual_seed(1234)
    pe = torch.randn(2, 5, 16, generator=g)
    pooled = torch.randn(2, 8, generator=g)
    steps = []
    cb = lambda p, i, t, kw: (steps.append(kw["latents"].clone()), kw)[1]
    generator = torch.Generator().manual_seed(2024)
    with torch.no_grad():
        image = pipe(prompt_embeds=pe, pooled_prompt_embeds=pooled, height=16, width=16, num_inference_steps=3,
                     guidance_scale=3.5, generator=generator, output_type="pt", callback_on_step_end=cb).images
    io = {"input.prompt_embeds": pe, "input.pooled_prompt_embeds": pooled, "output.image": image,
          "output.sigmas": pipe.scheduler.sigmas, "output.timesteps": pipe.scheduler.timesteps}
    for i, s in enumerate(steps):
        io[f"inter.latents_after_step{i}"] = s
    args = {"num_inference_steps": 3, "guidance_scale": 3.5, "height": 16, "width": 16, "vae_scale_factor": 2,
            "seed": 2024, "scheduler": sched,
            "components": {"transformer": "flux_guidance", "vae": "vae_quant"}}
    write_case("pipeline_dev", "FluxPipeline", args, None, io)


if __name__ == "__main__":
    torch.manual_seed(0)
    vae, _ = vae_quant()
    clip_eos()
    t5_fp16()
    transformer, _ = flux_guidance()
    pipeline_dev(transformer, vae)
    print("wrote", sorted(os.listdir(OUT)))
