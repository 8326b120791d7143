"""PyTorch/diffusers reference for `gen3d microbench flux`: the same stages, random weights of the real sizes made
directly on the GPU in bf16, timed the same way (warm-up, then median of synced wall-clock runs).
Needs diffusers (carry the wheel) and transformers (present on the GPU image)."""
import statistics, time, torch
from diffusers import AutoencoderKL, FluxTransformer2DModel
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

dev, dt = "cuda", torch.bfloat16
torch.manual_seed(0)


def build(ctor):
    torch.set_default_dtype(dt)
    with torch.device("meta"):
        m = ctor()
    torch.set_default_dtype(torch.float32)
    m = m.to_empty(device=dev).to(dt).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.02)
    return m


def timed(fn, warm=2, reps=5):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); torch.cuda.synchronize(); ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def peak():
    return torch.cuda.max_memory_allocated() / 2**30


rows = []
with torch.inference_mode():
    t5 = build(lambda: T5EncoderModel(T5Config(d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                                               feed_forward_proj="gated-gelu", vocab_size=32128)))
    ids = torch.randint(0, 32128, (1, 256), device=dev)
    rows.append(("T5 encoder (256 tokens)", timed(lambda: t5(ids))))
    del t5
    clip = build(lambda: CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                                      num_attention_heads=12, max_position_embeddings=77,
                                                      hidden_act="quick_gelu", projection_dim=768)))
    cids = torch.randint(0, 49408, (1, 77), device=dev)
    rows.append(("CLIP text (77 tokens)", timed(lambda: clip(cids))))
    del clip
    torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    tr = build(lambda: FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38,
                                              attention_head_dim=128, num_attention_heads=24, joint_attention_dim=4096,
                                              pooled_projection_dim=768, guidance_embeds=False, axes_dims_rope=(16, 56, 56)))
    vae = build(lambda: AutoencoderKL(in_channels=3, out_channels=3, latent_channels=16,
                                      block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                                      down_block_types=("DownEncoderBlock2D",) * 4,
                                      up_block_types=("UpDecoderBlock2D",) * 4, use_quant_conv=False,
                                      use_post_quant_conv=False))
    for size in (512, 1024):
        n = (size // 16) ** 2
        x = torch.randn(1, n, 64, device=dev, dtype=dt)
        txt = torch.randn(1, 256, 4096, device=dev, dtype=dt)
        pooled = torch.randn(1, 768, device=dev, dtype=dt)
        img_ids = torch.zeros(n, 3, device=dev)
        txt_ids = torch.zeros(256, 3, device=dev)
        t = torch.tensor([1.0], device=dev, dtype=dt)
        step = lambda: tr(hidden_states=x, encoder_hidden_states=txt, pooled_projections=pooled, timestep=t,
                          img_ids=img_ids, txt_ids=txt_ids, return_dict=False)
        rows.append((f"transformer step {size}^2", timed(step)))
        z = torch.randn(1, 16, size // 8, size // 8, device=dev, dtype=dt)
        rows.append((f"VAE decode {size}^2", timed(lambda: vae.decode(z, return_dict=False))))
        rows.append((f"4 steps + VAE decode {size}^2", timed(lambda: ([step() for _ in range(4)], vae.decode(z)), 1, 3)))
print(f"== diffusers {__import__('diffusers').__version__} / torch {torch.__version__} on {torch.cuda.get_device_name()} (bf16)")
for name, ms in rows:
    print(f"{name:44s} {ms:9.2f} ms")
print(f"peak allocated {peak():.2f} GiB")
