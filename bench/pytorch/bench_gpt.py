#!/usr/bin/env python3
"""PyTorch baseline for `anvil bench-train`: the same GPT-2 model, trained on random tokens.

The model follows GPT-2 (and Anvil's GptModel): learned position embedding, pre-LayerNorm blocks,
biases on every Linear and LayerNorm, GELU with the tanh approximation, no dropout, and an LM head
tied to the token embedding, whose rows are the vocabulary padded to a multiple of 128 (50,304 for
GPT-2's 50,257); the loss is the softmax cross-entropy over the real vocabulary only, as in Anvil.

The training step is what a well-tuned PyTorch user would run: bf16 autocast over fp32 weights,
F.scaled_dot_product_attention(is_causal=True) (flash attention on Hopper), torch.compile of each
transformer block (--compile-scope block, the default: identical blocks share one compilation, so a
24-layer model compiles in about the time of one block on an empty cache, where compiling the whole
model takes minutes; --compile-scope model compiles it whole; --no-compile runs eager), global gradient-norm clipping at 1.0 and fused AdamW (betas 0.9/0.95, weight decay 0.1
on 2-D tensors) -- the same work as Anvil's step: forward, backward, clip, AdamW.

Throughput and MFU are computed exactly as bench-train does (bench/.../harness/Flops.java):
    FLOPs per token = 6*N + 6*L*C*T,
N = every parameter counted once, padded vocabulary rows and the position embedding included, T the
benchmarked sequence length; MFU = FLOPs/token * median tokens/s / dense bf16 peak of one GPU.
Step times come from CUDA events (start of one step to the start of the next), after --warmup
unmeasured steps, which also absorb torch.compile's compilation.

The JSON written with --json has bench-train's keys (BenchResult, snake_case) so that
`anvil bench-compare anvil.json torch.json` prints both side by side with their ratios.

Memory (H100 80 GB, gpt-1.3b at T=2048): fp32 weights, grads and two AdamW moments take ~21 GB; the
bf16 activations of one 2048-token sequence take a few GB with flash attention and torch.compile, so
--batch-size 8 (16,384 tokens per step) fits, as in Anvil's run. To keep the tokens per optimizer step
when a micro-batch does not fit, pass --grad-accum (micro-batch --batch-size, accum steps of it per
optimizer step); --auto-accum halves the micro-batch and doubles the accumulation on an out-of-memory
error until it fits. Compare Anvil and PyTorch at the same tokens per step.

Runs on a machine with PyTorch and a CUDA GPU; --device cpu (eager, tiny shapes) is only a smoke test
of this script. --selftest-json writes a result with made-up figures and no torch, to check the JSON
against bench-compare.
"""

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
from datetime import datetime, timezone

# Anvil's presets (GptConfig.preset): (layers, channels, heads, max sequence length, vocabulary).
PRESETS = {
    "tiny": (2, 64, 4, 64, 512),
    "gpt2-124m": (12, 768, 12, 1024, 50257),
    "gpt2-350m": (24, 1024, 16, 1024, 50257),
    "gpt-1.3b": (24, 2048, 16, 2048, 50257),
}

# Dense bf16 peaks of one GPU, TFLOPS, as Anvil's Peak.KNOWN_GPUS has them (fp32 not needed here:
# this baseline always trains in bf16 autocast).
KNOWN_GPUS = {
    "h100-sxm": (989.0, "NVIDIA H100 SXM5", "H100 datasheet: 1,979 bf16 TFLOPS with sparsity, halved"),
    "h100-pcie": (756.0, "NVIDIA H100 PCIe", "H100 datasheet: 1,513 bf16 TFLOPS with sparsity, halved"),
    "h200": (989.0, "NVIDIA H200 SXM", "H200 datasheet: the H100 SXM's compute"),
    "a100": (312.0, "NVIDIA A100 SXM4/PCIe", "A100 datasheet"),
    "l4": (121.0, "NVIDIA L4", "L4 datasheet: 242 bf16 TFLOPS with sparsity, halved"),
    "a10g": (125.0, "NVIDIA A10G", "assumed: the A10's figures, an upper bound"),
    "rtx4090": (165.2, "NVIDIA GeForce RTX 4090", "Ada whitepaper: bf16 with fp32 accumulation, dense"),
}


def pad_vocab(v):
    """Anvil's GptConfig.padVocab: up to a multiple of 128."""
    return (v + 127) // 128 * 128


def anvil_parameter_count(layers, channels, max_seq_len, padded_vocab):
    """GptConfig.parameterCount(): wte (padded rows) + wpe + blocks + ln_f, biases included."""
    c = channels
    per_block = 12 * c * c + 13 * c  # c_attn 3c*c+3c, c_proj c*c+c, c_fc 4c*c+4c, mlp c_proj 4c*c+c, 2 LNs 4c
    return padded_vocab * c + max_seq_len * c + layers * per_block + 2 * c


def flops_per_token(parameters, layers, channels, seq_len):
    """Flops.perToken: 6*N + 6*L*C*T."""
    return 6 * parameters + 6 * layers * channels * seq_len


def model_string(layers, channels, heads, max_seq_len, vocab, padded):
    """GptConfig.toString(), so bench-compare's files describe the model alike."""
    return f"GptConfig[L={layers}, C={channels}, nh={heads}, T={max_seq_len}, V={vocab} (padded {padded})]"


def parse_peak(spec, gpu_name):
    """--peak-tflops: a number, a key of KNOWN_GPUS, or 'auto' (from the CUDA device's name)."""
    if spec == "auto":
        name = (gpu_name or "").upper()
        if "H200" in name:
            spec = "h200"
        elif "H100" in name:
            spec = "h100-pcie" if "PCIE" in name else "h100-sxm"
        elif "A100" in name:
            spec = "a100"
        elif "L4" in name.split():
            spec = "l4"
        elif "A10G" in name:
            spec = "a10g"
        elif "4090" in name:
            spec = "rtx4090"
        else:
            return None, f"unknown GPU '{gpu_name}': pass --peak-tflops"
    key = spec.strip().lower()
    if key in KNOWN_GPUS:
        tflops, name, source = KNOWN_GPUS[key]
        return tflops, f"{name} dense bf16 peak ({source})"
    try:
        value = float(spec)
    except ValueError:
        sys.exit(f"--peak-tflops takes TFLOPS, 'auto' or one of {', '.join(KNOWN_GPUS)}; got '{spec}'")
    if not value > 0:
        sys.exit(f"--peak-tflops must be positive, got {value}")
    return value, "--peak-tflops"


def stats(values):
    """Stats.of: median (mean of the middle two for an even count), min, max."""
    s = sorted(values)
    n = len(s)
    median = s[n // 2] if n % 2 == 1 else (s[n // 2 - 1] + s[n // 2]) / 2
    return {"median": median, "min": s[0], "max": s[-1]}


def result_json(a, *, parameters, backend, tokens_per_step, step_seconds, phase_ms, peak, peak_source,
                device_peak_bytes, final_loss, extra):
    """A dict with BenchResult's keys (see ResultFiles/BenchResult), plus a 'pytorch' object of our own
    (bench-compare ignores unknown keys)."""
    layers, channels, heads, max_seq_len, vocab = a.shape
    fpt = flops_per_token(parameters, layers, channels, a.seq_len)
    tps = stats([tokens_per_step / s for s in step_seconds])
    achieved = fpt * tps["median"] / 1e12
    return {
        "anvil_version": "n/a (PyTorch baseline, bench/pytorch/bench_gpt.py)",
        "timestamp": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "preset": a.preset,
        "model": model_string(layers, channels, heads, max_seq_len, vocab, pad_vocab(vocab)),
        "parameters": parameters,
        "backend": backend,
        "dtype": "bf16",
        "threads": None,
        "batch_size": a.batch_size * a.grad_accum,  # sequences per optimizer step, bench-train's B
        "seq_len": a.seq_len,
        "world_size": 1,
        "steps": a.steps,
        "warmup": a.warmup,
        "tokens_per_step": tokens_per_step,
        "tokens_per_s": tps,
        "step_ms": stats([s * 1e3 for s in step_seconds]),
        "phase_ms": phase_ms,
        "flops_per_token": fpt,
        "achieved_tflops": achieved,
        "peak_tflops": peak,
        "peak_source": peak_source,
        "mfu": None if peak is None else achieved / peak,
        # The JVM's heap has no counterpart: report this process's peak resident memory instead.
        "heap_peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "off_heap_peak_bytes": 0,
        "device_peak_bytes": device_peak_bytes,
        "price_per_gpu_hour": None,
        "cost_per_million_tokens": None,
        "final_loss": final_loss,
        "pytorch": extra,
    }


def build_model(torch, nn, F, layers, channels, heads, max_seq_len, vocab):
    padded = pad_vocab(vocab)

    def causal_attention(q, k, v):
        if hasattr(F, "scaled_dot_product_attention"):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        # PyTorch before 2.0 (Debian's, for the CPU smoke test only): the same maths, unfused.
        t = q.shape[-2]
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        mask = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
        return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(channels, 3 * channels)
            self.c_proj = nn.Linear(channels, channels)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.c_attn(x).split(c, dim=2)
            q = q.view(b, t, heads, c // heads).transpose(1, 2)
            k = k.view(b, t, heads, c // heads).transpose(1, 2)
            v = v.view(b, t, heads, c // heads).transpose(1, 2)
            y = causal_attention(q, k, v)
            return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(channels, 4 * channels)
            self.c_proj = nn.Linear(4 * channels, channels)

        def forward(self, x):
            return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(channels)
            self.attn = CausalSelfAttention()
            self.ln_2 = nn.LayerNorm(channels)
            self.mlp = Mlp()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class Gpt(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(padded, channels)
            self.wpe = nn.Embedding(max_seq_len, channels)
            self.h = nn.ModuleList([Block() for _ in range(layers)])
            self.ln_f = nn.LayerNorm(channels)
            self.lm_head = nn.Linear(channels, padded, bias=False)
            self.lm_head.weight = self.wte.weight  # tied
            # GPT-2's initialisation; the residual projections scaled by 1/sqrt(2L).
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    nn.init.zeros_(p)
                elif p.dim() >= 2:
                    std = 0.02 / math.sqrt(2 * layers) if name.endswith("c_proj.weight") else 0.02
                    nn.init.normal_(p, mean=0.0, std=std)

        def forward(self, idx, targets):
            b, t = idx.shape
            pos = torch.arange(t, device=idx.device)
            x = self.wte(idx) + self.wpe(pos)
            for block in self.h:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))
            # Softmax over the real vocabulary, as Anvil does; the padded rows take no probability.
            return F.cross_entropy(logits[..., :vocab].float().reshape(-1, vocab), targets.reshape(-1))

    return Gpt()


def run(a):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    cuda = a.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("bench_gpt.py: torch sees no CUDA device")
    device = torch.device(a.device)
    torch.manual_seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = True  # the few fp32 matmuls left outside autocast
    torch.backends.cudnn.allow_tf32 = True
    layers, channels, heads, max_seq_len, vocab = a.shape
    if a.seq_len > max_seq_len:
        sys.exit(f"--seq-len {a.seq_len} exceeds the model's context of {max_seq_len}")

    model = build_model(torch, nn, F, layers, channels, heads, max_seq_len, vocab).to(device)
    parameters = sum(p.numel() for p in model.parameters())  # the tied weight once
    expected = anvil_parameter_count(layers, channels, max_seq_len, pad_vocab(vocab))
    if parameters != expected:
        sys.exit(f"model has {parameters} parameters, Anvil's layout {expected}: the models differ")

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    fused = cuda or a.fused_cpu
    # fused= only when asked for: PyTorch before 2.0 (Debian's, for the CPU smoke test) has no such argument.
    optimizer = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), eps=1e-8, **({"fused": True} if fused else {}))

    compiled = False
    compile_error = None
    step_model = model
    blocks = list(model.h)

    def run_eager():
        nonlocal step_model
        step_model = model
        for i, block in enumerate(blocks):
            model.h[i] = block

    if a.compile:
        try:
            if a.compile_scope == "block":
                for i, block in enumerate(blocks):
                    model.h[i] = torch.compile(block)
            else:
                step_model = torch.compile(model)
            compiled = True
        except Exception as e:  # no compiler backend at all: say so and run eager
            compile_error = f"{type(e).__name__}: {e}"
            print(f"torch.compile unavailable ({compile_error}); running eager", flush=True)
            run_eager()

    autocast_dtype = torch.bfloat16
    generator = torch.Generator(device=device)
    generator.manual_seed(a.seed)
    micro, accum, seq = a.batch_size, a.grad_accum, a.seq_len

    def new_event():
        return torch.cuda.Event(enable_timing=True) if cuda else None

    def mark():
        if cuda:
            e = new_event()
            e.record()
            return e
        return time.perf_counter()

    def elapsed_ms(start, end):
        return start.elapsed_time(end) if cuda else (end - start) * 1e3

    def one_step():
        """One optimizer step; returns its marks (start, data, fwd, bwd per micro-batch, end) and loss."""
        marks = {"start": mark(), "micro": []}
        loss_sum = None
        for _ in range(accum):
            t0 = mark()
            # Random tokens, as bench-train uses: inputs and their next-token targets.
            tokens = torch.randint(0, vocab, (micro, seq + 1), device=device, generator=generator)
            x, y = tokens[:, :-1], tokens[:, 1:]
            t1 = mark()
            with torch.autocast(device_type=device.type, dtype=autocast_dtype):
                loss = step_model(x, y)
            t2 = mark()
            (loss / accum).backward()
            t3 = mark()
            marks["micro"].append((t0, t1, t2, t3))
            loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
        t4 = mark()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, **({"foreach": True} if cuda else {}))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        marks["opt"] = (t4, mark())
        return marks, loss_sum / accum

    t_warm = time.perf_counter()
    for i in range(a.warmup):
        try:
            one_step()
        except Exception as e:
            # torch.compile compiles on the first call: a missing compiler or a Triton failure shows
            # here. Fall back to eager rather than lose the run; out-of-memory is the caller's business.
            if i > 0 or not compiled or is_oom(e):
                raise
            compile_error = f"{type(e).__name__}: {e}"[:2000]
            print(f"torch.compile failed on the first step ({compile_error.splitlines()[0]}); running eager",
                  flush=True)
            compiled = False
            run_eager()
            optimizer.zero_grad(set_to_none=True)
            one_step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    warmup_s = time.perf_counter() - t_warm

    all_marks = []
    loss = None
    wall0 = time.perf_counter()
    for _ in range(a.steps):
        m, loss = one_step()
        all_marks.append(m)
    end = mark()
    if cuda:
        torch.cuda.synchronize()
    wall_s = time.perf_counter() - wall0

    # Step i lasts from its start to the next step's start (the last one to the end mark): host-side
    # gaps, if the CPU cannot keep the GPU fed, count against the step as they do in Anvil's timer.
    starts = [m["start"] for m in all_marks] + [end]
    step_seconds = [elapsed_ms(starts[i], starts[i + 1]) / 1e3 for i in range(a.steps)]
    phase = {"data": 0.0, "forward": 0.0, "backward": 0.0, "communication": 0.0, "optimizer": 0.0}
    for m in all_marks:
        for t0, t1, t2, t3 in m["micro"]:
            phase["data"] += elapsed_ms(t0, t1)
            phase["forward"] += elapsed_ms(t1, t2)
            phase["backward"] += elapsed_ms(t2, t3)
        phase["optimizer"] += elapsed_ms(*m["opt"])
    phase = {k: v / a.steps for k, v in phase.items()}

    tokens_per_step = micro * accum * seq
    gpu_name = torch.cuda.get_device_name() if cuda else platform.processor() or "cpu"
    peak, peak_source = parse_peak(a.peak_tflops, gpu_name) if cuda else (None, "no peak on the CPU smoke test")
    sdpa = "flash" if cuda and torch.backends.cuda.flash_sdp_enabled() else "default"
    # Short, for bench-compare's column; the details go under "pytorch".
    backend = (f"PyTorch {torch.__version__} on {gpu_name}, {'compiled' if compiled else 'eager'}"
               + (f", {micro}x{accum} accumulated" if accum > 1 else ""))
    how = f"torch.compile per {a.compile_scope}" if compiled else "eager"
    details = (f"CUDA {torch.version.cuda}, {how}, bf16 autocast, "
               f"SDPA {sdpa}, {'fused' if fused else 'foreach'} AdamW, clip 1.0")
    extra = {
        "details": details, "torch": torch.__version__, "cuda": torch.version.cuda, "device": gpu_name, "compiled": compiled,
        "compile_scope": a.compile_scope if compiled else None, "compile_error": compile_error, "micro_batch": micro, "grad_accum": accum,
        "warmup_s": warmup_s, "wall_tokens_per_s": tokens_per_step * a.steps / wall_s,
        "python": sys.version.split()[0], "argv": sys.argv,
    }
    return result_json(a, parameters=parameters, backend=backend, tokens_per_step=tokens_per_step,
                       step_seconds=step_seconds, phase_ms=phase, peak=peak, peak_source=peak_source,
                       device_peak_bytes=torch.cuda.max_memory_allocated() if cuda else None,
                       final_loss=float(loss), extra=extra)


def is_oom(e):
    return "out of memory" in str(e).lower() or type(e).__name__ == "OutOfMemoryError"


def print_result(r):
    tps = r["tokens_per_s"]
    print(f"bench_gpt: {r['preset']} {r['model']}, {r['parameters']:,} parameters")
    print(f"  {r['backend']}" + (f"; {r['pytorch']['details']}" if "details" in r["pytorch"] else ""))
    print(f"  B={r['batch_size']} T={r['seq_len']}, {r['warmup']} warmup + {r['steps']} measured steps, "
          f"{r['tokens_per_step']:,} tokens per step")
    print(f"  tokens/s  median {tps['median']:,.0f}  min {tps['min']:,.0f}  max {tps['max']:,.0f}")
    print(f"  step ms   median {r['step_ms']['median']:,.2f}; phases " +
          ", ".join(f"{k} {v:,.2f}" for k, v in r["phase_ms"].items()))
    mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.2f}%"
    print(f"  {r['flops_per_token']:,} FLOPs/token, {r['achieved_tflops']:.1f} TFLOPS achieved, "
          f"MFU {mfu} of {r['peak_tflops']} ({r['peak_source']})")
    if r["device_peak_bytes"] is not None:
        print(f"  device peak {r['device_peak_bytes'] / 2**30:.1f} GiB (torch.cuda.max_memory_allocated)")
    print(f"  final loss {r['final_loss']:.4f} (random tokens: about ln V)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="gpt2-124m", choices=sorted(PRESETS) + ["custom"])
    p.add_argument("--n-layer", type=int, help="custom: layers L")
    p.add_argument("--n-embd", type=int, help="custom: channels C")
    p.add_argument("--n-head", type=int, help="custom: heads nh")
    p.add_argument("--block-size", type=int, help="custom: context length (rows of wpe)")
    p.add_argument("--vocab-size", type=int, default=50257, help="custom: real vocabulary (default 50257)")
    p.add_argument("--batch-size", type=int, default=4, help="sequences per micro-batch (default 4)")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step (default 1)")
    p.add_argument("--auto-accum", action="store_true",
                   help="on out-of-memory, halve the micro-batch and double --grad-accum, keeping tokens per step")
    p.add_argument("--seq-len", type=int, help="tokens per sequence T (default: the model's context)")
    p.add_argument("--steps", type=int, default=20, help="measured steps (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured steps first; compilation happens here (default 3)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--peak-tflops", default="auto",
                   help="dense bf16 peak of the GPU for MFU: TFLOPS, auto (from the device name) or one of "
                        + ", ".join(KNOWN_GPUS) + " (default auto)")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="run eager, without torch.compile")
    p.add_argument("--compile-scope", choices=["block", "model"], default="block",
                   help="torch.compile each transformer block (default: one compilation serves them all) or "
                        "the whole model (minutes for 24 layers on an empty cache)")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                   help="cpu only smoke-tests this script (eager, tiny shapes)")
    p.add_argument("--fused-cpu", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", help="write the result here, with bench-train's keys")
    p.add_argument("--selftest-json", action="store_true",
                   help="write a result with made-up figures, without torch or a GPU (checks the JSON format)")
    a = p.parse_args(argv)

    if a.preset == "custom":
        if None in (a.n_layer, a.n_embd, a.n_head, a.block_size):
            p.error("--preset custom needs --n-layer, --n-embd, --n-head and --block-size")
        a.shape = (a.n_layer, a.n_embd, a.n_head, a.block_size, a.vocab_size)
    else:
        a.shape = PRESETS[a.preset]
    if a.shape[1] % a.shape[2] != 0:
        p.error(f"channels {a.shape[1]} must be divisible by heads {a.shape[2]}")
    a.seq_len = a.seq_len or a.shape[3]
    if a.compile and a.warmup < 1:
        p.error("torch.compile compiles during the first step: give --warmup 1 or more, or --no-compile")
    if min(a.batch_size, a.grad_accum, a.steps, a.seq_len) <= 0 or a.warmup < 0:
        p.error("--batch-size, --grad-accum, --steps and --seq-len must be positive, --warmup >= 0")

    if a.selftest_json:
        layers, channels, _, max_seq_len, vocab = a.shape
        n = anvil_parameter_count(layers, channels, max_seq_len, pad_vocab(vocab))
        peak, source = parse_peak("h100-sxm" if a.peak_tflops == "auto" else a.peak_tflops, None)
        r = result_json(a, parameters=n, backend="selftest (made-up figures)",
                        tokens_per_step=a.batch_size * a.grad_accum * a.seq_len,
                        step_seconds=[0.5, 0.4, 0.6][: max(1, min(3, a.steps))],
                        phase_ms={"data": 0.1, "forward": 100.0, "backward": 200.0, "communication": 0.0,
                                  "optimizer": 50.0},
                        peak=peak, peak_source=source, device_peak_bytes=1 << 30, final_loss=10.8,
                        extra={"selftest": True})
    else:
        while True:
            oom = False
            try:
                r = run(a)
                break
            except Exception as e:
                if not (a.auto_accum and is_oom(e) and a.batch_size > 1):
                    raise
                oom = True
            if oom:
                # Outside the except block, so the traceback (and the tensors its frames hold) is gone.
                print(f"out of memory at micro-batch {a.batch_size} x {a.grad_accum}: retrying with "
                      f"{a.batch_size // 2} x {a.grad_accum * 2}", flush=True)
                a.batch_size //= 2
                a.grad_accum *= 2
                import gc
                import torch
                gc.collect()
                torch.cuda.empty_cache()
                torch._dynamo.reset()
    print_result(r)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)
            f.write("\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
