#!/usr/bin/env python3
"""Builds the tiny Hugging Face checkpoints that the TypeScript decoder is checked against.

    python scripts/make_llm_fixtures.py build [--out test/fixtures/llm]
    python scripts/make_llm_fixtures.py check-adapter ADAPTER_DIR [--base DIR] [--inputs FILE]
    python scripts/make_llm_fixtures.py check-model MODEL_DIR --inputs FILE

`build` writes three random checkpoints (Qwen2 with tied embeddings in f32, Qwen3 in
bf16 and sharded, LLaMA in f16), each with `<name>.expected.safetensors` holding the
input ids, the attention mask and the logits of transformers' eager implementation, and a
PEFT LoRA adapter on the Qwen3 model with its adapted logits.

`check-model` loads a checkpoint folder (e.g. one the TypeScript code saved) with
transformers and prints JSON {shape, logits} for the inputs of an expected file.

`check-adapter` loads an adapter (for instance one the TypeScript code saved) with PEFT,
checks that every tensor in its file landed in the model, and prints JSON
{ok, problems, shape, logits} for the inputs of the base model's expected file.

Needs torch, transformers, peft and safetensors (not in requirements-test.txt: CI only
reads the recorded outputs). Install them in a separate venv, e.g. /work/pyhf.
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

SEED = 1234


def randomize(model, gen):
    """Random weights of a realistic scale, so every parameter (biases, norms) matters."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / max(p.shape[-1], 1) ** 0.5)


def inputs(vocab, gen):
    b, t = 2, 10
    ids = torch.randint(0, vocab, (b, t), generator=gen)
    mask = torch.ones(b, t, dtype=torch.long)
    mask[1, :3] = 0  # left padding in row 1
    return ids, mask


def logits_of(model, ids, mask):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits.float().contiguous()


def build_one(out, name, config, dtype, shard):
    from transformers import AutoModelForCausalLM

    gen = torch.Generator().manual_seed(SEED + len(name))
    config._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    randomize(model, gen)
    path = os.path.join(out, name)
    model.to(dtype).save_pretrained(path, max_shard_size=shard, safe_serialization=True)
    # Logits of the saved (rounded) weights, computed in float32 as the TS code does.
    reloaded = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager")
    ids, mask = inputs(config.vocab_size, gen)
    save_file(
        {"input_ids": ids, "attention_mask": mask, "logits": logits_of(reloaded, ids, mask)},
        os.path.join(out, f"{name}.expected.safetensors"),
    )
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(path, extra)):
            os.remove(os.path.join(path, extra))
    return reloaded, ids, mask


def build(out):
    from transformers import LlamaConfig, Qwen2Config, Qwen3Config
    from peft import LoraConfig, get_peft_model

    os.makedirs(out, exist_ok=True)
    torch.manual_seed(SEED)
    common = dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    build_one(out, "qwen2_tied", Qwen2Config(vocab_size=128, hidden_size=32, intermediate_size=64, rms_norm_eps=1e-6,
                                             rope_theta=10000.0, tie_word_embeddings=True, **common), torch.float32, "10GB")
    qwen3, ids, mask = build_one(out, "qwen3_bf16", Qwen3Config(vocab_size=160, hidden_size=64, intermediate_size=96, head_dim=24,
                                                                 rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=False,
                                                                 **common), torch.bfloat16, "60KB")
    build_one(out, "llama_f16", LlamaConfig(vocab_size=96, hidden_size=48, intermediate_size=80, rms_norm_eps=1e-5,
                                            rope_theta=10000.0, tie_word_embeddings=False, **common), torch.float16, "10GB")

    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05, bias="none", task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    peft_model = get_peft_model(qwen3, lora)
    gen = torch.Generator().manual_seed(SEED + 99)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:  # B starts at zero in PEFT; make the adapter change the output
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    peft_model.peft_config["default"].base_model_name_or_path = "qwen3_bf16"
    peft_model.save_pretrained(os.path.join(out, "qwen3_lora"))
    save_file({"input_ids": ids, "attention_mask": mask, "logits": logits_of(peft_model, ids, mask)},
              os.path.join(out, "qwen3_lora.expected.safetensors"))
    readme = os.path.join(out, "qwen3_lora", "README.md")
    if os.path.exists(readme):
        os.remove(readme)


def check_adapter(adapter_dir, base, inputs_file):
    from transformers import AutoModelForCausalLM
    from peft import PeftModel

    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    if base is None:
        base = cfg["base_model_name_or_path"]
        if not os.path.isabs(base):
            base = os.path.join(adapter_dir, "..", base)
    model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32, attn_implementation="eager")
    model = PeftModel.from_pretrained(model, adapter_dir)
    problems = []
    saved = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    params = dict(model.named_parameters())
    for key, value in saved.items():
        target = key.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
        if target not in params:
            problems.append(f"{key}: no such parameter in the PEFT model")
        elif params[target].shape != value.shape:
            problems.append(f"{key}: shape {list(value.shape)} vs model {list(params[target].shape)}")
        elif not torch.equal(params[target].detach().float(), value.float()):
            problems.append(f"{key}: values differ after loading")
    n_lora = sum(1 for n in params if ".lora_" in n)
    if n_lora != len(saved):
        problems.append(f"model has {n_lora} LoRA tensors, file has {len(saved)}")
    if inputs_file is None:
        inputs_file = os.path.join(base, "..", os.path.basename(os.path.normpath(base)) + ".expected.safetensors")
    data = load_file(inputs_file)
    logits = logits_of(model, data["input_ids"], data["attention_mask"])
    print(json.dumps({"ok": not problems, "problems": problems, "shape": list(logits.shape),
                      "scaling": model.base_model.model.model.layers[0].self_attn.q_proj.scaling["default"],
                      "logits": logits.flatten().tolist()}))
    return 0 if not problems else 1


def check_model(model_dir, inputs_file):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager")
    data = load_file(inputs_file)
    logits = logits_of(model, data["input_ids"], data["attention_mask"])
    print(json.dumps({"shape": list(logits.shape), "logits": logits.flatten().tolist()}))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "llm"))
    c = sub.add_parser("check-adapter")
    c.add_argument("adapter_dir")
    c.add_argument("--base")
    c.add_argument("--inputs")
    m = sub.add_parser("check-model")
    m.add_argument("model_dir")
    m.add_argument("--inputs", required=True)
    a = ap.parse_args()
    if a.cmd == "build":
        build(a.out)
        return 0
    if a.cmd == "check-model":
        return check_model(a.model_dir, a.inputs)
    return check_adapter(a.adapter_dir, a.base, a.inputs)


if __name__ == "__main__":
    sys.exit(main())
