"""PyTorch reference for `gen3d bench-op matmul`: the same GEMM, timed the same way (median of synced runs)."""
import argparse, time, torch

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=8192)
p.add_argument("--dtype", default="bfloat16")
p.add_argument("--iterations", type=int, default=20)
a = p.parse_args()
dt = getattr(torch, a.dtype)
g = torch.Generator(device="cuda").manual_seed(0)
x = torch.randn(a.n, a.n, dtype=dt, device="cuda", generator=g)
y = torch.randn(a.n, a.n, dtype=dt, device="cuda", generator=g)
for _ in range(3):
    x @ y
torch.cuda.synchronize()
ts = []
for _ in range(a.iterations):
    t0 = time.perf_counter()
    x @ y
    torch.cuda.synchronize()
    ts.append(time.perf_counter() - t0)
ts.sort()
m = ts[len(ts) // 2]
print(f"pytorch    matmul {a.n}^3 {a.dtype} on {torch.cuda.get_device_name()}: median {m*1e3:.3f} ms, "
      f"{2*a.n**3/m/1e12:.1f} TFLOP/s (torch {torch.__version__})")
