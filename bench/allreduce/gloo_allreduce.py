#!/usr/bin/env python3
"""PyTorch gloo all-reduce, measured the way `anvil allreduce-bench` measures Anvil's.

Runs --ranks processes on this machine (loopback TCP, as `anvil launch --nproc-per-node R` does),
each summing one fp32 tensor per size; after --warmup untimed all-reduces it times --iters of them,
averages the time over the ranks, and prints nccl-tests' bandwidths: algbw = size / time and
busbw = algbw * 2(R-1)/R. The table has allreduce-bench's columns, so bench/allreduce/side_by_side.sh
can join the two on the element count.

Sizes are --max-size and smaller ones by factors of 4 down to --min-size (powers of 1024: 64MB is
64 MiB, as in Anvil).

Needs PyTorch: on Debian/Ubuntu `apt-get install python3-torch` (run with /usr/bin/python3), or
`pip install torch`.
"""

import argparse
import os
import re
import socket
import sys
import time

UNITS = {"": 0, "B": 0, "K": 10, "KB": 10, "KIB": 10, "M": 20, "MB": 20, "MIB": 20, "G": 30, "GB": 30, "GIB": 30}


def parse_size(text):
    m = re.fullmatch(r"(\d+)\s*([A-Za-z]*)", text.strip())
    if not m or m.group(2).upper() not in UNITS:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size: write e.g. 256KB or 64MB")
    return int(m.group(1)) << UNITS[m.group(2).upper()]


def format_size(n):
    units = ["B", "KB", "MB", "GB"]
    u = 0
    while u < len(units) - 1 and n and n % 1024 == 0:
        n //= 1024
        u += 1
    return f"{n}{units[u]}"


def sizes(smallest, largest):
    out = []
    s = largest
    while s >= smallest and s >= 4:
        out.insert(0, s // 4 * 4)
        s //= 4
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, args, port):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.ranks)
    world = args.ranks
    if rank == 0:
        print(f"gloo allreduce: {world} ranks (one per process, loopback TCP), fp32 sum, {args.iters} iterations "
              f"after {args.warmup} warmup, torch {torch.__version__}", flush=True)
        print(f"{'size':>10} {'elements':>12} {'time (ms)':>11} {'algbw (GB/s)':>13} {'busbw (GB/s)':>13}",
              flush=True)
    for nbytes in sizes(args.min_size, args.max_size):
        t = torch.full((nbytes // 4,), float(rank + 1), dtype=torch.float32)
        dist.all_reduce(t)
        expected = world * (world + 1) / 2
        if not bool(t.eq(expected).all()):
            raise SystemExit(f"gloo all-reduce gave a wrong sum at {nbytes} bytes")
        t.zero_()
        for _ in range(args.warmup):
            dist.all_reduce(t)
        start = time.perf_counter()
        for _ in range(args.iters):
            dist.all_reduce(t)
        seconds = torch.tensor([(time.perf_counter() - start) / args.iters], dtype=torch.float64)
        dist.all_reduce(seconds)
        mean = seconds.item() / world
        if rank == 0:
            algbw = nbytes / mean / 1e9
            busbw = algbw * 2 * (world - 1) / world
            print(f"{format_size(nbytes):>10} {nbytes // 4:>12} {mean * 1e3:>11.3f} {algbw:>13.3f} {busbw:>13.3f}",
                  flush=True)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--max-size", type=parse_size, default=parse_size("64MB"))
    p.add_argument("--min-size", type=parse_size, default=None, help="default: --max-size / 256")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1) // 2),
                   help="torch intra-op threads per rank")
    args = p.parse_args()
    if args.min_size is None:
        args.min_size = max(4, args.max_size // 256)
    try:
        import torch.multiprocessing as mp
    except ImportError:
        sys.exit("gloo_allreduce.py needs PyTorch: apt-get install python3-torch (then run it with /usr/bin/python3),"
                 " or pip install torch")
    mp.start_processes(worker, args=(args, free_port()), nprocs=args.ranks, start_method="fork")


if __name__ == "__main__":
    main()
