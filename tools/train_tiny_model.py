#!/usr/bin/python3
"""Trains the project's embedded default model: a small Gemma-2-style
transformer on public-domain English text from Debian packages.

No weights can be downloaded where this project is built, so it makes its own.
The architecture is exactly Hugging Face's Gemma 2 (so config.json and
model.safetensors load in transformers too): alternating sliding-window and
full attention layers (layer 0 is sliding), GQA, head_dim 64, attention
soft-cap 50, final logit soft-cap 30, query_pre_attn_scalar, RMSNorm with
(1 + weight), pre- and post-norms around attention and MLP, GeGLU (tanh gelu),
tied embeddings scaled by sqrt(hidden). The tokenizer is byte-level: ids
0..255 are the bytes, 256..258 are <pad>, <bos>, <eos>.

Run (CI never trains):
  apt-get install -y python3-torch libopenblas0-pthread bible-kjv jargon-text
  /usr/bin/python3 tools/train_tiny_model.py --minutes 60 --out models/demo-gemma2

Writes config.json, model.safetensors (f32), tokenizer.json,
tokenizer_config.json, training_log.txt and reference_logits.json (logits of
a fixed text from this script's own forward pass, the engine's test oracle).
"""

import argparse
import gzip
import json
import math
import os
import struct
import subprocess
import time

# One thread everywhere: torch's own pool and OpenBLAS's (which ignores
# torch.set_num_threads and would otherwise take every core).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(1)

CONFIG = {
    "architectures": ["Gemma2ForCausalLM"],
    "model_type": "gemma2",
    "vocab_size": 259,
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 6,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "max_position_embeddings": 1024,
    "sliding_window": 128,
    "query_pre_attn_scalar": 64,
    "attn_logit_softcapping": 50.0,
    "final_logit_softcapping": 30.0,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "hidden_activation": "gelu_pytorch_tanh",
    "hidden_act": "gelu_pytorch_tanh",
    "tie_word_embeddings": True,
    "attention_bias": False,
    "pad_token_id": 256,
    "bos_token_id": 257,
    "eos_token_id": 258,
    "torch_dtype": "float32",
    "_name_or_path": "kvplug/demo-gemma2",
}
PAD, BOS, EOS = 256, 257, 258
REFERENCE_TEXT = "In the beginning God created the heaven and the earth. A hacker is"


def load_corpus():
    """The King James Bible (bible-kjv's `bible` program) and the Jargon File."""
    kjv = subprocess.run(
        ["bible", "Gen1:1-Rev22:21"], capture_output=True, check=True
    ).stdout
    with gzip.open("/usr/share/doc/jargon-text/jargon.txt.gz", "rb") as f:
        jargon = f.read()
    return kjv, jargon


def rms_norm(x, w, eps):
    x32 = x.float()
    y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return y * (1.0 + w.float())


def rope(x, positions, theta):
    # Non-interleaved halves (transformers' rotate_half).
    d = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    freqs = positions[:, None].float() * inv[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos(), emb.sin()
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    rotated = torch.cat([-x2, x1], dim=-1)
    return x * cos + rotated * sin


class Model(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        h, d = c["hidden_size"], c["head_dim"]
        nq, nkv, inter = c["num_attention_heads"], c["num_key_value_heads"], c["intermediate_size"]
        P = torch.nn.Parameter
        init = lambda *s: P(torch.randn(*s) * 0.02)  # noqa: E731
        self.embed = init(c["vocab_size"], h)
        self.layers = torch.nn.ModuleList()
        for _ in range(c["num_hidden_layers"]):
            layer = torch.nn.Module()
            layer.q = init(nq * d, h)
            layer.k = init(nkv * d, h)
            layer.v = init(nkv * d, h)
            layer.o = init(h, nq * d)
            layer.gate = init(inter, h)
            layer.up = init(inter, h)
            layer.down = init(h, inter)
            for name in ["ln_in", "ln_post_attn", "ln_pre_ff", "ln_post_ff"]:
                setattr(layer, name, P(torch.zeros(h)))
            self.layers.append(layer)
        self.norm = P(torch.zeros(h))

    def forward(self, ids):
        c = self.c
        b, t = ids.shape
        nq, nkv, d = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        eps = c["rms_norm_eps"]
        x = F.embedding(ids, self.embed) * torch.tensor(c["hidden_size"] ** 0.5)
        pos = torch.arange(t)
        causal = pos[None, :] <= pos[:, None]
        window = causal & (pos[:, None] - pos[None, :] < c["sliding_window"])
        for i, L in enumerate(self.layers):
            r = x
            y = rms_norm(x, L.ln_in, eps)
            q = (y @ L.q.T).view(b, t, nq, d).transpose(1, 2)
            k = (y @ L.k.T).view(b, t, nkv, d).transpose(1, 2)
            v = (y @ L.v.T).view(b, t, nkv, d).transpose(1, 2)
            q, k = rope(q, pos, c["rope_theta"]), rope(k, pos, c["rope_theta"])
            k = k.repeat_interleave(nq // nkv, dim=1)
            v = v.repeat_interleave(nq // nkv, dim=1)
            s = (q @ k.transpose(-1, -2)) * c["query_pre_attn_scalar"] ** -0.5
            cap = c["attn_logit_softcapping"]
            s = torch.tanh(s / cap) * cap
            mask = window if i % 2 == 0 else causal
            s = s.masked_fill(~mask, float("-inf"))
            a = torch.softmax(s, dim=-1) @ v
            a = a.transpose(1, 2).reshape(b, t, nq * d) @ L.o.T
            x = r + rms_norm(a, L.ln_post_attn, eps)
            r = x
            y = rms_norm(x, L.ln_pre_ff, eps)
            y = (F.gelu(y @ L.gate.T, approximate="tanh") * (y @ L.up.T)) @ L.down.T
            x = r + rms_norm(y, L.ln_post_ff, eps)
        x = rms_norm(x, self.norm, eps)
        logits = x @ self.embed.T
        cap = c["final_logit_softcapping"]
        return torch.tanh(logits / cap) * cap

    def hf_tensors(self):
        out = {"model.embed_tokens.weight": self.embed, "model.norm.weight": self.norm}
        names = {
            "q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
            "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
            "down": "mlp.down_proj", "ln_in": "input_layernorm",
            "ln_post_attn": "post_attention_layernorm",
            "ln_pre_ff": "pre_feedforward_layernorm",
            "ln_post_ff": "post_feedforward_layernorm",
        }
        for i, L in enumerate(self.layers):
            for attr, hf in names.items():
                suffix = "" if hf.endswith("layernorm") else ""
                out[f"model.layers.{i}.{hf}.weight{suffix}"] = getattr(L, attr)
        return {k: v.detach().float().contiguous() for k, v in out.items()}


def save_safetensors(tensors, path):
    """The safetensors format by hand: u64 header size, JSON header, data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = tensors[name].numpy().astype("<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def byte_to_unicode():
    """GPT-2's byte <-> printable character table, used by ByteLevel."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def tokenizer_json():
    table = byte_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    specials = [(PAD, "<pad>"), (BOS, "<bos>"), (EOS, "<eos>")]
    for i, s in specials:
        vocab[s] = i
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for i, s in specials
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                          "use_regex": False},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [BOS], "tokens": ["<bos>"]}},
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                    "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }


def write_outputs(model, out, log_lines, step, tokens_seen):
    os.makedirs(out, exist_ok=True)
    save_safetensors(model.hf_tensors(), os.path.join(out, "model.safetensors"))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tokenizer_json(), f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
                   "add_bos_token": True, "model_max_length": CONFIG["max_position_embeddings"],
                   "tokenizer_class": "PreTrainedTokenizerFast"}, f, indent=2)
        f.write("\n")
    ids = [BOS] + list(REFERENCE_TEXT.encode())
    with torch.no_grad():
        logits = model(torch.tensor([ids]))[0]
    with open(os.path.join(out, "reference_logits.json"), "w") as f:
        json.dump({
            "text": REFERENCE_TEXT,
            "token_ids": ids,
            "step": step,
            "tokens_seen": tokens_seen,
            "note": "float32 logits [len(token_ids), vocab_size] from tools/train_tiny_model.py's forward pass",
            "logits": [[float(f"{v:.7g}") for v in row] for row in logits.tolist()],
        }, f, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(out, "training_log.txt"), "w") as f:
        f.write("\n".join(log_lines) + "\n")


def sample(model, prompt, n=120, temperature=0.8, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = [BOS] + list(prompt.encode())
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids[-256:]]))[0, -1] / temperature
            nxt = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=g))
            if nxt >= 256:
                break
            ids.append(nxt)
    return bytes(i for i in ids[1:] if i < 256).decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--out", default="models/demo-gemma2")
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--save-every", type=float, default=10, help="minutes between checkpoints")
    args = ap.parse_args()
    torch.manual_seed(0)
    kjv, jargon = load_corpus()
    data = torch.tensor(list(kjv + b"\n" + jargon), dtype=torch.long)
    split = int(len(data) * 0.99)
    train, val = data[:split], data[split:]
    model = Model(CONFIG)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    log = [
        f"corpus: bible-kjv {len(kjv)} bytes + jargon-text {len(jargon)} bytes; "
        f"train {len(train)} val {len(val)}",
        f"model: {params} parameters, config {json.dumps(CONFIG)}",
        f"batch {args.batch} x seq {args.seq}, AdamW lr {args.lr}, time budget {args.minutes} min, "
        f"torch {torch.__version__}, 1 thread",
    ]
    print("\n".join(log), flush=True)
    start = time.time()
    budget = args.minutes * 60
    last_save = start
    step = 0
    while True:
        elapsed = time.time() - start
        if elapsed > budget:
            break
        frac = elapsed / budget
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        ix = torch.randint(0, len(train) - args.seq - 1, (args.batch,))
        x = torch.stack([torch.cat([torch.tensor([BOS]), train[i:i + args.seq - 1]]) for i in ix])
        y = torch.stack([train[i:i + args.seq] for i in ix])
        loss = F.cross_entropy(model(x).reshape(-1, CONFIG["vocab_size"]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            with torch.no_grad():
                vi = torch.randint(0, len(val) - args.seq - 1, (8,))
                vx = torch.stack([torch.cat([torch.tensor([BOS]), val[i:i + args.seq - 1]]) for i in vi])
                vy = torch.stack([val[i:i + args.seq] for i in vi])
                vloss = F.cross_entropy(model(vx).reshape(-1, CONFIG["vocab_size"]), vy.reshape(-1))
            line = (f"step {step} t={elapsed / 60:.1f}min lr={lr:.2e} train_loss={loss.item():.4f} "
                    f"val_loss={vloss.item():.4f} ({vloss.item() / math.log(2):.3f} bits/byte)")
            print(line, flush=True)
            log.append(line)
        if time.time() - last_save > args.save_every * 60:
            write_outputs(model, args.out, log, step, step * args.batch * args.seq)
            last_save = time.time()
    for prompt in ["In the beginning", "And the LORD said", "A hacker is"]:
        text = sample(model, prompt)
        log.append(f"sample {prompt!r}: {text!r}")
        print(log[-1], flush=True)
    log.append(f"done: {step} steps, {step * args.batch * args.seq} tokens, "
               f"{(time.time() - start) / 60:.1f} min")
    write_outputs(model, args.out, log, step, step * args.batch * args.seq)
    print(log[-1], flush=True)


if __name__ == "__main__":
    main()
