#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention (causal) beside `anvil bench-attention`: the same shapes,
the same FLOP count (2*B*T^2*C forward over the lower triangle, 2.5 times that backward), median
milliseconds of CUDA-event-timed repeats after a warmup, fresh random inputs.

    python3 bench/pytorch/bench_attention.py --batch-size 8 --seq-len 2048 --heads 16 --head-size 128
"""
import argparse
import json
import statistics
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--head-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--json", help="write the figures here")
    a = p.parse_args()
    import torch
    import torch.nn.functional as F
    dev = torch.device(a.device)
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    b, t, nh, hs = a.batch_size, a.seq_len, a.heads, a.head_size
    c = nh * hs
    q, k, v = (torch.randn(b, nh, t, hs, device=dev, dtype=dt, requires_grad=True) for _ in range(3))
    dout = torch.randn(b, nh, t, hs, device=dev, dtype=dt)

    sdpa = getattr(F, "scaled_dot_product_attention", None)
    mask = torch.ones(t, t, device=dev, dtype=torch.bool).triu(1)

    def forward():
        if sdpa is not None:
            return sdpa(q, k, v, is_causal=True)
        # torch < 2.0 (Debian's 1.13, for the CPU selftest): the plain composition
        att = (q @ k.transpose(-2, -1)) * hs ** -0.5
        return att.masked_fill(mask, float("-inf")).softmax(-1) @ v

    def both():
        out = forward()
        out.backward(dout)

    def median_ms(fn):
        fn()
        times = []
        for _ in range(a.repeats):
            if dev.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end))
            else:
                import time
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    fwd_flops = 2.0 * b * t * t * c
    both_flops = fwd_flops * 3.5
    with torch.no_grad():
        fwd_ms = median_ms(forward)
    both_ms = median_ms(both)
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    what = "SDPA" if sdpa is not None else "math attention (this torch has no SDPA)"
    print(f"bench_attention.py: torch {torch.__version__} {what} on {name}, {a.dtype}, B={b} T={t} heads={nh} "
          f"head size={hs}, causal")
    print(f"forward           {fwd_ms:9.3f} ms {fwd_flops / fwd_ms / 1e9:8.1f} TFLOPS")
    print(f"forward+backward  {both_ms:9.3f} ms {both_flops / both_ms / 1e9:8.1f} TFLOPS")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "kernel": what, "dtype": a.dtype, "batch_size": b, "seq_len": t,
                       "heads": nh, "head_size": hs, "forward_ms": fwd_ms, "forward_tflops": fwd_flops / fwd_ms / 1e9,
                       "forward_backward_ms": both_ms,
                       "forward_backward_tflops": both_flops / both_ms / 1e9}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
