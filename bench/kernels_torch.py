"""Reference timings for `deno task bench kernels`: torch's
scaled_dot_product_attention in bf16 on CUDA, on the kernel benchmark's
decode shapes, and the device's copy bandwidth, measured in the same run.

Reads one JSON request on stdin (written by bench/kernels/torch.ts):
  {"points": [{"shape", "numQHeads", "numKvHeads", "headDim", "context",
   "batch"}], "repeat": N, "minTimeMs": N, "copyBytes": N}
and prints one JSON object on stdout:
  {"skipped": reason} when torch or CUDA is absent, else
  {"device", "torch", "copy": {"gbPerS", "how"}, "rows": [...], "skips": [...]}.
K and V are contiguous [batch, kv heads, context, head_dim] tensors (not
paged), the layout SDPA reads; GQA through enable_gqa where torch has it.
"""

import json
import math
import sys


def skipped(reason):
    print(json.dumps({"skipped": reason}))
    return 0


def sample(torch, fn, repeat, min_time_ms):
    """Median and fastest ms per call, CUDA events around many calls."""
    fn()
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    first = max(start.elapsed_time(end), 1e-3)
    iterations = max(1, min(256, math.ceil(20 / first)))
    samples = []
    while len(samples) < 1000 and (
        len(samples) < repeat or sum(samples) * iterations < min_time_ms
    ):
        start.record()
        for _ in range(iterations):
            fn()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end) / iterations)
    samples.sort()
    return samples[len(samples) // 2], samples[0], len(samples), iterations


def main():
    request = json.load(sys.stdin)
    try:
        import torch
        import torch.nn.functional as F
    except Exception as error:  # noqa: BLE001 - any import failure is a skip
        return skipped(f"torch is not installed ({error}): pip install torch")
    if not torch.cuda.is_available():
        return skipped(f"torch {torch.__version__} sees no CUDA device")
    device = torch.device("cuda")
    props = torch.cuda.get_device_properties(device)
    repeat, min_ms = request["repeat"], request["minTimeMs"]

    size = request["copyBytes"] // 16 * 16
    src = torch.ones(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    _, best, n, it = sample(torch, lambda: dst.copy_(src), 5, 0)
    copy = {
        "gbPerS": 2 * size / (best / 1e3) / 1e9,
        "how": f"torch copy_ of {size / 2**20:.0f} MiB on {props.name}, counted as "
        f"read + write (2 x size), {it} copies per sample, fastest of {n} (CUDA events)",
    }
    del src, dst

    rows, skips = [], []
    for p in request["points"]:
        what = f"torch sdpa {p['shape']} decode context {p['context']} batch {p['batch']}"
        b, hq, hkv, d, ctx = p["batch"], p["numQHeads"], p["numKvHeads"], p["headDim"], p["context"]
        try:
            q = torch.randn(b, hq, 1, d, dtype=torch.bfloat16, device=device)
            k = torch.randn(b, hkv, ctx, d, dtype=torch.bfloat16, device=device)
            v = torch.randn_like(k)
            try:
                F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
                call = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)  # noqa: E731
                gqa = "enable_gqa"
            except TypeError:
                # Older torch: K/V repeated per query head (reads more bytes).
                k = k.repeat_interleave(hq // hkv, dim=1)
                v = v.repeat_interleave(hq // hkv, dim=1)
                call = lambda: F.scaled_dot_product_attention(q, k, v)  # noqa: E731
                gqa = "K/V repeated per query head (torch without enable_gqa)"
            ms, min_ms_, n, it = sample(torch, call, repeat, min_ms)
            rows.append({**p, "ms": ms, "minMs": min_ms_, "samples": n,
                         "method": f"CUDA events, {it} calls per sample, {gqa}"})
            del q, k, v
        except torch.cuda.OutOfMemoryError as error:
            skips.append({"what": what, "reason": f"out of GPU memory: {error}"})
        torch.cuda.empty_cache()
    print(json.dumps({"device": props.name, "torch": torch.__version__,
                      "copy": copy, "rows": rows, "skips": skips}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
