"""PyTorch reference for the DINOv2 row of `gen3d microbench trellis`: transformers' Dinov2WithRegistersModel with the
dinov2-with-registers-large config at 518 px, random weights made on the GPU, timed like ours (median of synced runs)."""
import statistics, sys, time, torch
from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

cfg = Dinov2WithRegistersConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                                patch_size=14, image_size=518, num_register_tokens=4, layerscale_value=1.0)
x32 = torch.randn(1, 3, 518, 518, device="cuda")
print(f"== transformers {__import__('transformers').__version__} / torch {torch.__version__} on {torch.cuda.get_device_name()}")
for dt in (torch.float32, torch.float16, torch.bfloat16):
    for impl in ("eager", "sdpa"):
        torch.manual_seed(0)
        cfg._attn_implementation = impl
        with torch.device("cuda"):
            m = Dinov2WithRegistersModel(cfg)
        m = m.to(dt).eval()
        x = x32.to(dt)
        with torch.inference_mode():
            for _ in range(3):
                m(pixel_values=x)
            torch.cuda.synchronize()
            ts = []
            for _ in range(10):
                t0 = time.perf_counter(); m(pixel_values=x); torch.cuda.synchronize(); ts.append((time.perf_counter() - t0) * 1e3)
        print(f"DINOv2-L/14-reg 518 transformers {impl:5s} {str(dt).replace('torch.', ''):9s} {statistics.median(ts):8.2f} ms")
        del m
        torch.cuda.empty_cache()
