#!/usr/bin/env python3
"""PyTorch reference of one EGMF training step (src/train/trainer.ts `trainStep`).

Reads a folder written by `exportTorchReference` (src/bench/torch-reference.ts): the
trainable variables and the frozen decoder (weights.safetensors), one training batch with
its tokenisation and LLM layout already done (batch.safetensors), our variables after one
step (after.safetensors) and meta.json. It re-implements the step op for op: the modality
encoders, the local / semantic / global experts, the hierarchical gate and its balance
loss, the auxiliary probe, the pseudo tokens placed into the decoder's input, the Qwen3
decoder with LoRA, the answer cross-entropy, global-norm clipping and AdamW.

    python bench/torch_egmf.py --weights DIR --check     # one JSON line: loss, grad norm, loss after one step
    python bench/torch_egmf.py --weights DIR --bench --steps 20 --threads 1

Needs torch and numpy only. Errors go to stderr as `error: <file>, key '<key>': <message>`
and exit 1.
"""
import argparse
import json
import math
import os
import resource
import statistics
import struct
import sys
import time

import numpy as np

EXPORT_FORMAT = 1
MASK_NEG = -1e9
EXPERT_KINDS = ("local", "semantic", "global")
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class RefError(Exception):
    def __init__(self, message, file=None, key=None):
        where = []
        if file is not None:
            where.append(str(file))
        if key is not None:
            where.append(f"key '{key}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


# ---------------------------------------------------------------------------- files

_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I32": "<i4", "I64": "<i8", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_safetensors(path):
    """name -> numpy array (BF16 widened to float32)."""
    if not os.path.isfile(path):
        raise RefError("file not found", file=path)
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise RefError("not a safetensors file (shorter than its 8-byte header length)", file=path)
    (n,) = struct.unpack("<Q", raw[:8])
    if n > 100_000_000 or 8 + n > len(raw):
        raise RefError(f"not a safetensors file (header length {n} for a {len(raw)}-byte file)", file=path)
    try:
        header = json.loads(raw[8:8 + n].decode("utf8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RefError(f"safetensors header is not valid JSON: {e}", file=path)
    if not isinstance(header, dict):
        raise RefError("safetensors header is not a JSON object", file=path)
    data = memoryview(raw)[8 + n:]
    out = {}
    for key, e in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(e, dict) or not isinstance(e.get("shape"), list) or not isinstance(e.get("data_offsets"), list) or len(e["data_offsets"]) != 2:
            raise RefError("entry needs dtype, shape and data_offsets [begin, end]", file=path, key=key)
        dtype = e.get("dtype")
        begin, end = e["data_offsets"]
        shape = [int(d) for d in e["shape"]]
        count = int(np.prod(shape)) if shape else 1
        if dtype == "BF16":
            size = 2
        elif dtype in _DTYPES:
            size = np.dtype(_DTYPES[dtype]).itemsize
        else:
            raise RefError(f"unsupported dtype {dtype!r}", file=path, key=key)
        if not (0 <= begin <= end <= len(data)) or end - begin != count * size:
            raise RefError(f"data_offsets [{begin}, {end}] do not hold shape {shape} of {dtype} in a {len(data)}-byte data section (file truncated?)", file=path, key=key)
        buf = data[begin:end]
        if dtype == "BF16":
            arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(buf, dtype=_DTYPES[dtype])
        out[key] = arr.reshape(shape)
    return out


def read_meta(folder):
    path = os.path.join(folder, "meta.json")
    if not os.path.isdir(folder):
        raise RefError("weights folder not found", file=folder)
    if not os.path.isfile(path):
        raise RefError("file not found (not a torch reference export?)", file=path)
    try:
        with open(path, encoding="utf8") as f:
            meta = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RefError(f"not valid JSON: {e}", file=path)
    if not isinstance(meta, dict):
        raise RefError("not a JSON object", file=path)
    if meta.get("format") != EXPORT_FORMAT:
        raise RefError(f"export format {meta.get('format')!r}, this script reads {EXPORT_FORMAT}: export again", file=path, key="format")
    return meta, path


def need(d, dotted, file):
    """d['a']['b'] for 'a.b', else an error naming the key."""
    cur = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise RefError("missing", file=file, key=dotted)
        cur = cur[part]
    return cur


class Export:
    """meta.json + the three safetensors files, checked against each other."""

    def __init__(self, folder):
        self.folder = folder
        self.meta, self.meta_path = read_meta(folder)

    def load(self):
        folder = self.folder
        self.weights_path = os.path.join(folder, "weights.safetensors")
        self.batch_path = os.path.join(folder, "batch.safetensors")
        self.after_path = os.path.join(folder, "after.safetensors")
        self.weights = read_safetensors(self.weights_path)
        self.batch = read_safetensors(self.batch_path)
        self.after = read_safetensors(self.after_path) if os.path.isfile(self.after_path) else None
        self.variables = need(self.meta, "variables", self.meta_path)
        self.frozen = need(self.meta, "frozen", self.meta_path)
        for v in list(self.variables) + list(self.frozen):
            name = v["name"]
            if name not in self.weights:
                raise RefError("tensor not found (the export is incomplete, or from a different config)", file=self.weights_path, key=name)
            got = list(self.weights[name].shape)
            if got != list(v["shape"]):
                raise RefError(f"shape {got} does not match meta.json's {list(v['shape'])}", file=self.weights_path, key=name)
            if self.weights[name].dtype != np.float32:
                raise RefError(f"expected F32, got {self.weights[name].dtype}", file=self.weights_path, key=name)
        for key in ("text_ids", "text_mask", "audio", "audio_mask", "vision", "vision_mask", "labels", "llm_ids", "llm_pseudo_index",
                    "llm_pseudo_mask", "llm_attention_mask", "llm_positions", "targets", "answer_vocab", "prompt_ids"):
            if key not in self.batch:
                raise RefError("tensor not found", file=self.batch_path, key=key)

    def cfg(self, dotted):
        return need(self.meta, dotted, self.meta_path)


# ---------------------------------------------------------------------------- model

def build(torch, ex, training_dropout):
    """Returns (loss_fn, trainables by name). loss_fn(training) -> (total, stats)."""
    F = torch.nn.functional
    meta = ex.meta
    m = ex.cfg("model")
    llm = ex.cfg("llm")
    lora = meta.get("lora")
    task = ex.cfg("task")
    width = m["width"]
    modalities = m["modalities"]
    if m.get("head", "llm") != "llm":
        raise RefError("only head: llm is ported", file=ex.meta_path, key="model.head")
    p_drop = m["dropout"] if training_dropout else 0.0
    lora_drop = (lora["dropout"] if lora else 0.0) if training_dropout else 0.0

    trainable_names = [v["name"] for v in ex.variables]
    tensors = {}
    for name in trainable_names:
        tensors[name] = torch.nn.Parameter(torch.from_numpy(ex.weights[name].copy()))
    for v in ex.frozen:
        tensors[v["name"]] = torch.from_numpy(ex.weights[v["name"]].copy())
    used = set()

    def P(name):
        t = tensors.get(name)
        if t is None:
            raise RefError("tensor not found (the export is incomplete, or from a different config)", file=ex.weights_path, key=name)
        used.add(name)
        return t

    def opt_param(name):
        return P(name) if name in tensors else None

    b_np = ex.batch
    bt = {k: torch.from_numpy(np.array(v)) for k, v in b_np.items()}
    B = bt["labels"].shape[0]

    def dropout(x, p):
        return F.dropout(x, p, training=True) if p > 0 else x

    def linear(x, prefix, bias=True):
        y = x @ P(f"{prefix}.weight")
        return y + P(f"{prefix}.bias") if bias else y

    def layer_norm(x, prefix):
        return F.layer_norm(x, (x.shape[-1],), P(f"{prefix}.weight"), P(f"{prefix}.bias"), eps=1e-5)

    def gelu(x):
        return F.gelu(x, approximate="tanh")

    def rms_norm(x, w, eps):
        return F.rms_norm(x, (x.shape[-1],), w, eps=eps)

    def zero_padding(x, mask):
        return x * mask.unsqueeze(2)

    def masked_mean(x, mask):
        mk = mask.unsqueeze(2)
        return (x * mk).sum(1) / mk.sum(1).clamp_min(1)

    def masked_max(x, mask):
        mk = mask.unsqueeze(2)
        pooled = torch.amax(x + (1 - mk) * MASK_NEG, dim=1)
        return pooled * mk.sum(1).clamp_max(1)

    def key_bias(mask):
        b, s = mask.shape
        return ((1 - mask) * MASK_NEG).reshape(b, 1, 1, s)

    def split_heads(x, heads):
        b, t, w = x.shape
        return x.reshape(b, t, heads, w // heads).transpose(1, 2)

    def merge_heads(x):
        b, h, t, d = x.shape
        return x.transpose(1, 2).reshape(b, t, h * d)

    def attention(q, k, v, bias):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, enable_gqa=q.shape[1] != k.shape[1])

    def write_sinusoid(out, pos, w):
        i = np.arange(w)
        freq = np.power(10000.0, -(2 * (i // 2)) / w)
        a = pos * freq
        out[...] = np.where(i % 2 == 0, np.sin(a), np.cos(a))

    def sinusoid(length, w):
        v = np.zeros((length, w), dtype=np.float64)
        for p in range(length):
            write_sinusoid(v[p], float(p), w)
        return torch.from_numpy(v.astype(np.float32))

    def time_sinusoid(mask_np, w):
        b, l = mask_np.shape
        v = np.zeros((b, l, w), dtype=np.float64)
        for s in range(b):
            n = int((mask_np[s] > 0).sum())
            for p in range(n):
                write_sinusoid(v[s, p], (p + 0.5) / n * 32, w)
        return torch.from_numpy(v.astype(np.float32))

    class Block:
        """Pre-LN transformer block (src/models/egmf/layers.ts AttentionBlock)."""

        def __init__(self, prefix, heads, cross):
            self.prefix, self.heads, self.cross = prefix, heads, cross

        def __call__(self, x, bias, src=None):
            p = self.prefix
            h = layer_norm(x, f"{p}.ln1")
            s = h if src is None else layer_norm(src, f"{p}.ln_src")
            q = split_heads(linear(h, f"{p}.attn.q"), self.heads)
            k = split_heads(linear(s, f"{p}.attn.k"), self.heads)
            v = split_heads(linear(s, f"{p}.attn.v"), self.heads)
            a = merge_heads(attention(q, k, v, bias))
            x1 = x + dropout(linear(a, f"{p}.attn.o"), p_drop)
            f = linear(gelu(linear(layer_norm(x1, f"{p}.ln2"), f"{p}.ffn.up")), f"{p}.ffn.down")
            return x1 + dropout(f, p_drop)

    # --- experts (src/models/egmf/expert-*.ts)
    experts = []
    for kind in EXPERT_KINDS:
        e = m["experts"][kind]
        if not e["enabled"]:
            continue
        for i in range(e["count"]):
            experts.append((kind, f"{kind}.{i}", f"egmf.experts.{kind}.{i}", e))

    def local_expert(prefix, e, seqs):
        pooled = []
        for mi, mod in enumerate(modalities):
            h, mask = seqs[mi]
            for l in range(e["depth"]):
                lp = f"{prefix}.{mod}.l{l}"
                outs = []
                for k in e["kernels"]:
                    w = P(f"{lp}.conv.k{k}.weight")  # [k, in, out]
                    left = (k - 1) // 2
                    xp = F.pad(h.transpose(1, 2), (left, k - 1 - left))
                    outs.append(F.conv1d(xp, w.permute(2, 1, 0), P(f"{lp}.conv.k{k}.bias")).transpose(1, 2))
                cat = outs[0] if len(outs) == 1 else torch.cat(outs, 2)
                h = zero_padding(dropout(gelu(linear(cat, f"{lp}.mix")), p_drop), mask)
            pooled.append(masked_max(h, mask))
        return linear(torch.stack(pooled, 1), f"{prefix}.out")

    def semantic_expert(prefix, e, seqs):
        masks = [s[1] for s in seqs]
        n = len(seqs)
        other_mask = [torch.cat([masks[j] for j in range(n) if j != mi], 1) for mi in range(n)]
        other_bias = [key_bias(mk) for mk in other_mask]
        has_keys = [mk.sum(1).clamp_max(1).reshape(-1, 1, 1) for mk in other_mask]
        xs = [linear(s[0], f"{prefix}.in") for s in seqs]
        for l in range(e["depth"]):
            new = []
            for mi, mod in enumerate(modalities):
                x = xs[mi]
                src = torch.cat([xs[j] for j in range(n) if j != mi], 1)
                y = Block(f"{prefix}.l{l}.{mod}", e["heads"], True)(x, other_bias[mi], src)
                new.append(zero_padding(x + (y - x) * has_keys[mi], masks[mi]))
            xs = new
        pooled = [masked_mean(layer_norm(x, f"{prefix}.ln_out"), masks[mi]) for mi, x in enumerate(xs)]
        return linear(torch.stack(pooled, 1), f"{prefix}.out")

    def gru(prefix, x, mask, w):
        b, t, _ = x.shape
        gx = linear(x, f"{prefix}.x")
        wh, bh = P(f"{prefix}.h.weight"), P(f"{prefix}.h.bias")
        h = x.new_zeros(b, w)
        outs = []
        for s in range(t):
            gh = h @ wh + bh
            xr, xz, xn = gx[:, s].split(w, 1)
            hr, hz, hn = gh.split(w, 1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            nn_ = torch.tanh(xn + r * hn)
            nxt = (1 - z) * nn_ + z * h
            h = h + mask[:, s:s + 1] * (nxt - h)
            outs.append(h)
        return zero_padding(torch.stack(outs, 1), mask)

    def global_expert(prefix, e, seqs):
        lens = [s[0].shape[1] for s in seqs]
        emb = P(f"{prefix}.modality_embedding")
        parts = [linear(s[0], f"{prefix}.in") + emb[mi] for mi, s in enumerate(seqs)]
        mask = torch.cat([s[1] for s in seqs], 1)
        x = zero_padding(torch.cat(parts, 1), mask)
        if e["kind"] == "transformer":
            bias = key_bias(mask)
            for l in range(e["depth"]):
                x = zero_padding(Block(f"{prefix}.l{l}", e["heads"], False)(x, bias), mask)
        else:
            for l in range(e["depth"]):
                x = gru(f"{prefix}.gru{l}", x, mask, e["width"])
        h = layer_norm(x, f"{prefix}.ln_out")
        segs = torch.split(h, lens, 1)
        pooled = [masked_mean(seg, seqs[mi][1]) for mi, seg in enumerate(segs)]
        return linear(torch.stack(pooled, 1), f"{prefix}.out")

    run_expert = {"local": local_expert, "semantic": semantic_expert, "global": global_expert}

    # --- gate (src/models/egmf/gating.ts)
    g = m["gating"]
    temp, top_k, depth = g["temperature"], g["top_k"], g["depth"]
    groups = []
    for i, (kind, *_rest) in enumerate(experts):
        if groups and groups[-1][0] == kind:
            groups[-1][1].append(i)
        else:
            groups.append((kind, [i]))

    def top_indices(p, k):
        return np.argsort(-p.detach().numpy(), axis=1, kind="stable")[:, :k]

    def gate(context, outs):
        b, e = context.shape[0], len(outs)
        c = layer_norm(context, "egmf.gate.ln")
        stacked = torch.stack(outs, 1)  # [B, E, M, d]
        if depth == 1:
            per_expert = stacked.mean(2)
        else:
            modality = torch.softmax(linear(c, "egmf.gate.modality").reshape(b, e, len(modalities)) / temp, -1)
            per_expert = (stacked * modality.unsqueeze(3)).sum(2)
        logits = linear(c, "egmf.gate.expert")
        if depth < 3:
            p = torch.softmax(logits / temp, -1)
        else:
            kind_w = torch.softmax(linear(c, "egmf.gate.kind") / temp, -1)
            cols = []
            for gi, (_k, members) in enumerate(groups):
                within = torch.softmax(logits[:, members[0]:members[0] + len(members)] / temp, -1)
                cols.append(within * kind_w[:, gi:gi + 1])
            p = torch.cat(cols, 1)
        slots = 1 if top_k <= 0 else min(top_k, e)
        f = np.zeros(e, dtype=np.float32)
        for row in top_indices(p, slots):
            for j in row:
                f[j] += 1 / (b * slots)
        balance = e * (torch.from_numpy(f) * p.mean(0)).sum()
        if 0 < top_k < e:
            keep = torch.zeros_like(p)
            for i, row in enumerate(top_indices(p, top_k)):
                keep[i, row] = 1
            kept = p * keep
            p = kept / kept.sum(1, keepdim=True)
        fused = (per_expert * p.unsqueeze(2)).sum(1)
        return fused, balance

    # --- decoder (src/models/llm/decoder.ts)
    D = llm["hidden_size"]
    table = P("decoder.model.embed_tokens.weight")
    head_table = table if llm["tie_word_embeddings"] else P("decoder.lm_head.weight")
    lora_modules = set(lora["modules"]) if lora else set()
    scaling = lora["scaling"] if lora else 0.0

    def rope_tables(positions):
        hd, theta = llm["head_dim"], llm["rope_theta"]
        half = hd // 2
        e = (np.arange(half, dtype=np.float64) * 2 / hd).astype(np.float32).astype(np.float64)
        inv = (1.0 / np.power(float(theta), e).astype(np.float32).astype(np.float64)).astype(np.float32)
        a = positions.astype(np.float32)[..., None] * inv  # [B, T, half] in float32
        cos = np.cos(a.astype(np.float64)).astype(np.float32)
        sin = np.sin(a.astype(np.float64)).astype(np.float32)
        cos = np.concatenate([cos, cos], -1)[:, None]
        sin = np.concatenate([sin, sin], -1)[:, None]
        return torch.from_numpy(cos), torch.from_numpy(sin)

    def rope(x, cos, sin):
        half = x.shape[3] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], 3)
        return x * cos + rotated * sin

    def proj(l, name, x):
        group = "mlp" if name in ("gate_proj", "up_proj", "down_proj") else "self_attn"
        module = f"model.layers.{l}.{group}.{name}"
        y = x @ P(f"decoder.{module}.weight")
        bias = opt_param(f"decoder.{module}.bias")
        if bias is not None:
            y = y + bias
        if module in lora_modules:
            xi = dropout(x, lora_drop)
            y = y + (xi @ P(f"lora.default.{module}.A") @ P(f"lora.default.{module}.B")) * scaling
        return y

    eps = llm["rms_norm_eps"]
    attn_rows = bt["llm_attention_mask"]
    n_tok = attn_rows.shape[1]
    causal = torch.triu(torch.ones(n_tok, n_tok, dtype=torch.bool), 1)
    dec_bias = torch.zeros(B, 1, n_tok, n_tok).masked_fill(causal | (attn_rows == 0)[:, None, None, :], MASK_NEG)
    cos, sin = rope_tables(b_np["llm_positions"])

    def decoder(x):
        for l in range(llm["num_layers"]):
            p = f"decoder.model.layers.{l}"
            h = rms_norm(x, P(f"{p}.input_layernorm.weight"), eps)
            q = split_heads(proj(l, "q_proj", h), llm["num_heads"])
            k = split_heads(proj(l, "k_proj", h), llm["num_kv_heads"])
            v = split_heads(proj(l, "v_proj", h), llm["num_kv_heads"])
            if llm["qk_norm"]:
                q = rms_norm(q, P(f"{p}.self_attn.q_norm.weight"), eps)
                k = rms_norm(k, P(f"{p}.self_attn.k_norm.weight"), eps)
            a = merge_heads(attention(rope(q, cos, sin), rope(k, cos, sin), v, dec_bias))
            x1 = x + proj(l, "o_proj", a)
            h2 = rms_norm(x1, P(f"{p}.post_attention_layernorm.weight"), eps)
            x = x1 + proj(l, "down_proj", F.silu(proj(l, "gate_proj", h2)) * proj(l, "up_proj", h2))
        return rms_norm(x, P("decoder.model.norm.weight"), eps)

    # --- constants of the model (computed once, as ours does at construction)
    with torch.no_grad():
        embedding_norm = float(torch.linalg.vector_norm(table[bt["prompt_ids"].long()], dim=-1).mean())
    pseudo_k = m["pseudo_tokens"]
    pseudo_rms = embedding_norm / math.sqrt(D)
    vocab = bt["answer_vocab"].long()
    text_pos = sinusoid(bt["text_ids"].shape[1], width)
    inputs = {
        "text": (None, bt["text_mask"]),
        "audio": (bt["audio"], bt["audio_mask"]),
        "vision": (bt["vision"], bt["vision_mask"]),
    }
    for mod in modalities:
        want = meta["features"].get(mod)
        if mod != "text" and inputs[mod][0].shape[2] != want:
            raise RefError(f"{mod} features are {inputs[mod][0].shape[2]} wide but meta.json says {want}", file=ex.batch_path, key=mod)
    positions = {mod: (sinusoid(inputs[mod][0].shape[1], width) if m["positions"] == "index" else time_sinusoid(b_np[f"{mod}_mask"], width)) for mod in modalities if mod != "text"}
    text_ids = bt["text_ids"].long()
    llm_ids = bt["llm_ids"].long()
    pseudo_mask = bt["llm_pseudo_mask"].unsqueeze(2)
    pseudo_index = bt["llm_pseudo_index"].long()
    targets = bt["targets"].long()
    labels = bt["labels"]
    aux_w = m["aux_probe_weight"]
    has_probe = aux_w > 0

    def loss_fn():
        # encoders (src/models/egmf/encoders.ts)
        seqs = []
        for mod in modalities:
            prefix = f"egmf.encoders.{mod}"
            if mod == "text":
                with torch.no_grad():
                    x = F.embedding(text_ids, table)
                x = rms_norm(x, None, 1e-10)
                pos = text_pos
                mask = inputs["text"][1]
            else:
                x, mask = inputs[mod]
                pos = positions[mod]
            h = linear(x, f"{prefix}.proj") + P(f"{prefix}.modality_embedding") + pos
            out = dropout(layer_norm(h, f"{prefix}.ln"), p_drop)
            seqs.append((zero_padding(out, mask), mask))
        context = torch.cat([masked_mean(x, mk) for x, mk in seqs], 1)
        outs = []
        for kind, name, prefix, e in experts:
            o = run_expert[kind](prefix, e, seqs)
            if g["expert_norm"]:
                o = layer_norm(o, f"egmf.gate.expert_norm.{name}")
            outs.append(o)
        fused, balance = gate(context, outs)
        # LLM input: token embeddings with the pseudo tokens in their slots
        with torch.no_grad():
            tok = F.embedding(llm_ids, table)
        if pseudo_k > 0:
            h = dropout(gelu(linear(fused, "egmf.pseudo.up")), p_drop)
            pseudo = linear(h, "egmf.pseudo.down").reshape(B, pseudo_k, D)
            pseudo = rms_norm(pseudo, P("egmf.pseudo.gain") * pseudo_rms, 1e-6)
            rows = torch.cat([pseudo.reshape(B * pseudo_k, D), pseudo.new_zeros(1, D)], 0)
            embeds = tok * (1 - pseudo_mask) + rows[pseudo_index]
        else:
            embeds = tok
        hidden = decoder(embeds)
        n, t = hidden.shape[1], targets.shape[1]
        logits = hidden[:, n - t - 1:n - 1] @ head_table[vocab].t()
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        total = ce + g["balance_weight"] * balance
        probe = None
        if has_probe:
            out = linear(fused, "egmf.probe")
            probe = F.cross_entropy(out, labels.long()) if task["kind"] == "classification" else (out.reshape(-1) - labels).abs().mean()
            total = total + aux_w * probe
        return total, {"ce": ce.item(), "balance": balance.item(), "probe": None if probe is None else probe.item()}

    def check_used():
        unused = [n for n in trainable_names if n not in used]
        if unused:
            raise RefError("exported variable not used by this port (a config it does not implement?)", file=ex.weights_path, key=unused[0])

    params = {n: tensors[n] for n in trainable_names}
    return loss_fn, params, check_used


def make_optimizer(torch, ex, params):
    t = ex.cfg("train")
    decay = [params[v["name"]] for v in ex.variables if v["decay"]]
    plain = [params[v["name"]] for v in ex.variables if not v["decay"]]
    groups = [{"params": decay, "weight_decay": t["weight_decay"]}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=t["lr"], betas=tuple(t["betas"]), eps=t["adam_eps"])


def step(torch, loss_fn, params, opt, clip):
    """One trainStep: loss, gradients, global-norm clipping, AdamW. → (loss, grad norm, stats)."""
    opt.zero_grad(set_to_none=True)
    loss, stats = loss_fn()
    loss.backward()
    with_grad = [p for p in params.values() if p.grad is not None]
    if clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(with_grad, clip)
    else:
        norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in with_grad))
    opt.step()
    value = loss.item()
    if not math.isfinite(value):
        raise RefError(f"training diverged: loss is {value}")
    return value, float(norm), stats


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True, help="folder written by exportTorchReference")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="loss, grad norm and loss after one AdamW step (deterministic)")
    mode.add_argument("--bench", action="store_true", help="median ms per training step")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    if a.steps < 1:
        raise RefError("must be a positive integer", key="steps")
    if a.threads < 1:
        raise RefError("must be a positive integer", key="threads")

    ex = Export(a.weights)
    dropout = float(ex.cfg("model.dropout"))
    lora_dropout = float(ex.cfg("lora.dropout")) if ex.meta.get("lora") else 0.0
    if a.check and (dropout != 0 or lora_dropout != 0):
        key = "model.dropout" if dropout != 0 else "lora.dropout"
        raise RefError(f"--check needs an export without dropout (overrides model.dropout=0 and llm.lora.dropout=0), got {dropout if dropout != 0 else lora_dropout}", file=ex.meta_path, key=key)
    ex.load()
    try:
        import torch
    except ImportError as e:
        raise RefError(f"cannot import torch ({e}): pip install torch==2.15.0")
    torch.set_num_threads(a.threads)
    torch.manual_seed(int(ex.meta.get("seed", 0)))
    torch.set_default_dtype(torch.float32)
    loss_fn, params, check_used = build(torch, ex, training_dropout=a.bench)
    opt = make_optimizer(torch, ex, params)
    clip = float(ex.cfg("train.grad_clip"))

    if a.check:
        loss, norm, stats = step(torch, loss_fn, params, opt, clip)
        check_used()
        with torch.no_grad():
            after, _ = loss_fn()
        out = {"loss": loss, **stats, "grad_norm": norm, "loss_after": after.item(), "torch": torch.__version__}
        if ex.after is not None:
            worst, worst_name = 0.0, None
            for name, p in params.items():
                if name not in ex.after:
                    raise RefError("tensor not found", file=ex.after_path, key=name)
                d = float(np.max(np.abs(p.detach().numpy() - ex.after[name]))) if p.numel() > 0 else 0.0
                if worst_name is None or d > worst:
                    worst, worst_name = d, name
            out["max_param_diff"] = worst
            out["max_param_diff_name"] = worst_name
        print(json.dumps(out))
        return

    step(torch, loss_fn, params, opt, clip)  # warm-up
    check_used()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step(torch, loss_fn, params, opt, clip)
        times.append((time.perf_counter() - t0) * 1000)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"ms_per_step": round(statistics.median(times), 2), "steps": a.steps, "threads": a.threads,
                      "torch": torch.__version__, "peak_rss_mb": round(rss, 1)}))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except RefError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except (KeyError, TypeError, ValueError) as e:
        # meta.json is the only source of keyed config values: a value missing or of the wrong type there.
        folder = next((sys.argv[i + 1] for i, x in enumerate(sys.argv[:-1]) if x == "--weights"), ".")
        print(f"error: {os.path.join(folder, 'meta.json')}: missing or malformed value ({type(e).__name__}: {e})", file=sys.stderr)
        sys.exit(1)
