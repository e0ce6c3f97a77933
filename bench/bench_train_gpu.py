"""Measure time and memory of `fairpp train` / `fairpp evaluate` at Llama-3.2-3B size on one GPU.

Not a test and not run by CI: it needs a CUDA GPU and the training extra. It answers the question
docs/training.md's recipe raises ("how long, how much memory?") with measurements instead of estimates.

No weights are downloaded (the GPU machines here are offline): the model is a randomly initialised causal LM
with Llama-3.2-3B's exact configuration (3.21B parameters, 128,256-token vocabulary), so every matrix product,
activation and optimiser state has the real size; only the numbers inside are random, which changes neither
the time nor the memory. The tokenizer is a byte-level BPE trained here on the pair text, with a chat template
of Llama 3's shape (header tokens, default system block); the token counts it gives are printed, and the
per-epoch figures scale with them.

    python bench/bench_train_gpu.py --pairs PAIRS.parquet --out DIR [--lora-steps 30] [--full-steps 8]
    python bench/bench_train_gpu.py --pairs PAIRS.parquet --out DIR --tiny     # a CPU dry run of the script

What it runs, through the package's own `fairpp.train.train` and `fairpp.train.evaluate.score_prompts`:
1. weighted DPO with LoRA (r=16, all linear layers), bf16, activation checkpointing, batch 8 x grad-accum 2:
   the recipe in docs/training.md;
2. full fine-tuning (no LoRA), same batch, with the frozen reference copy;
3. scoring held-out prompts (next-token probabilities of A/B/C) with the LoRA model, batch 32.
For each: seconds per optimiser step (median over the steps after the first two), pairs and tokens per second,
peak GPU memory (torch.cuda.max_memory_allocated / reserved), and the epoch time extrapolated to the pair file.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Llama-3.2-3B's configuration (the published config.json of meta-llama/Llama-3.2-3B-Instruct).
LLAMA_32_3B = dict(vocab_size=128256, hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
                   num_attention_heads=24, num_key_value_heads=8, head_dim=128, max_position_embeddings=131072,
                   rms_norm_eps=1e-5, tie_word_embeddings=True, hidden_act="silu",
                   rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                                    "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 8192})
TINY = dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=2048, tie_word_embeddings=True)

# A chat template of Llama 3's shape: header tokens around each role, end-of-turn token, default system block.
SPECIALS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|pad|>"]
CHAT_TEMPLATE = (
    "{{ '<|begin_of_text|>' }}"
    "{% if messages[0]['role'] != 'system' %}{{ '<|start_header_id|>system<|end_header_id|>\n\n"
    "Cutting Knowledge Date: December 2023\nToday Date: 27 Nov 2026\n\n<|eot_id|>' }}{% endif %}"
    "{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] | trim"
    " + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")


def build_tokenizer(texts: list[str], vocab: int, path: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIALS,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                 pad_token="<|pad|>")
    hf.chat_template = CHAT_TEMPLATE
    hf.save_pretrained(path)
    return hf


def build_model(cfg: dict, tokenizer, path: Path, device: str) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**cfg, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id)
    t = time.perf_counter()
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16 if device == "cuda" else torch.float32)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(path)
    del model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"parameters": n, "build_and_save_s": round(time.perf_counter() - t, 1)}


def token_lengths(pairs, tokenizer, n: int = 2000) -> dict:
    """Tokens per training sequence (prompt + chosen answer) with the chat template, as TRL builds them."""
    from fairpp.train.data import dpo_rows

    sample = pairs.sample(min(n, len(pairs)), random_state=0)
    rows = dpo_rows(sample, fmt="chat", weighted=True)
    lengths = [len(tokenizer.apply_chat_template(p + c, tokenize=True, return_dict=True)["input_ids"])
               for p, c in zip(rows["prompt"], rows["chosen"])]
    return {"mean": round(float(np.mean(lengths)), 1), "p95": int(np.percentile(lengths, 95)), "max": max(lengths)}


def run_training(name: str, pairs_path: Path, base: Path, out: Path, *, lora: bool, steps: int, batch: int,
                 accum: int, n_pairs: int, tokens_per_seq: float, checkpointing: bool | None = None) -> dict:
    import torch

    from fairpp.train.run import TrainConfig, train

    cuda = torch.cuda.is_available()
    if cuda:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    stamps: list[tuple[int, float, float]] = []
    cfg = TrainConfig(pairs=pairs_path, base=str(base), out=out, weighted=True, lora=lora, max_steps=steps,
                      batch_size=batch, grad_accum=accum, beta=0.1, overwrite=True,
                      gradient_checkpointing=checkpointing)
    t0 = time.perf_counter()
    card = train(cfg, progress=lambda e: stamps.append((e["step"], time.perf_counter(), e["loss"])))
    wall = time.perf_counter() - t0
    diffs = [b[1] - a[1] for a, b in zip(stamps, stamps[1:])]
    step_s = statistics.median(diffs[2:] if len(diffs) > 4 else diffs) if diffs else float("nan")
    pairs_per_step = batch * accum
    steps_per_epoch = math.ceil(n_pairs / pairs_per_step)
    res = {
        "name": name, "lora": lora, "steps": card["steps"], "batch_size": batch, "grad_accum": accum,
        "bf16": card["hyperparameters"]["bf16"], "gradient_checkpointing": card["hyperparameters"]["gradient_checkpointing"],
        "wall_s_incl_load": round(wall, 1), "first_step_s": round(stamps[0][1] - t0, 1) if stamps else None,
        "step_s_median": round(step_s, 3), "pairs_per_s": round(pairs_per_step / step_s, 1),
        "tokens_per_s": round(2 * pairs_per_step * tokens_per_seq / step_s),
        "epoch_pairs": n_pairs, "epoch_steps": steps_per_epoch,
        "epoch_min_extrapolated": round(steps_per_epoch * step_s / 60, 1),
        "losses": [round(s[2], 4) for s in stamps], "device": card["device"],
    }
    if cuda:
        res["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        res["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    adapter = sum(f.stat().st_size for f in out.glob("*.safetensors"))
    res["saved_weights_mib"] = round(adapter / 2**20, 1)
    print(json.dumps(res), flush=True)
    return res


def run_eval(model_dir: Path, pairs, n: int, batch: int) -> dict:
    import torch

    from fairpp.train.data import prompt_ids
    from fairpp.train.evaluate import load_model, score_prompts

    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    model, tok, _ = load_model(model_dir)
    if torch.cuda.is_available():
        model = model.to("cuda")
    model.eval()
    load_s = time.perf_counter() - t
    prompts = pairs.drop_duplicates("question_id")["prompt"].head(n).tolist()
    ids = [prompt_ids(tok, p, fmt="chat") for p in prompts]
    score_prompts(model, tok, ids[: batch * 2], batch_size=batch)  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    probs, mass = score_prompts(model, tok, ids, batch_size=batch)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    res = {"name": "evaluate (LoRA model, next-token A/B/C)", "questions": len(ids), "batch_size": batch,
           "load_s": round(load_s, 1), "questions_per_s": round(len(ids) / dt, 1),
           "test_split_5684_s": round(5684 / (len(ids) / dt), 1),
           "prompt_tokens_mean": round(float(np.mean([len(i) for i in ids])), 1),
           "probabilities_sum_to_1": bool(np.allclose(probs.sum(axis=1), 1.0))}
    if torch.cuda.is_available():
        res["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    print(json.dumps(res), flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="where train_gpu.json goes")
    ap.add_argument("--work", type=Path, default=Path("/tmp/fairpp-train-bench"))
    ap.add_argument("--tiny", action="store_true", help="a tiny model: a CPU dry run of this script")
    ap.add_argument("--lora-steps", type=int, default=30)
    ap.add_argument("--full-steps", type=int, default=8, help="0 skips full fine-tuning")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--grad-accum", type=int, default=2)
    ap.add_argument("--eval-n", type=int, default=1024, help="0 skips the evaluation")
    ap.add_argument("--no-checkpointing", action="store_true", help="train without activation checkpointing")
    ap.add_argument("--vocab", type=int, default=32000, help="BPE vocabulary trained on the pair text")
    args = ap.parse_args(argv)

    import pandas as pd
    import torch
    import transformers
    import trl

    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = pd.read_parquet(args.pairs)
    results: dict = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                     "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                                  "trl": trl.__version__},
                     "model": "tiny" if args.tiny else "Llama-3.2-3B configuration, random weights, bf16",
                     "pairs_file": str(args.pairs), "pairs": len(pairs)}
    if device == "cuda":
        results["gpu_total_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    print(json.dumps(results), flush=True)

    t = time.perf_counter()
    texts = pd.concat([pairs["prompt"], pairs["chosen"], pairs["rejected"]]).drop_duplicates().tolist()
    tok = build_tokenizer(texts, 1000 if args.tiny else args.vocab, args.work / "base")
    results["tokenizer_s"] = round(time.perf_counter() - t, 1)
    results["tokens_per_sequence"] = token_lengths(pairs, tok)
    results["model_build"] = build_model(TINY if args.tiny else LLAMA_32_3B, tok, args.work / "base", device)
    print(json.dumps({k: results[k] for k in ("tokens_per_sequence", "model_build")}), flush=True)
    tps = results["tokens_per_sequence"]["mean"]

    def save() -> None:
        (args.out / "train_gpu.json").write_text(json.dumps(results, indent=2))

    # Train on a random sample just large enough for the steps asked (TRL tokenizes the whole file before the
    # first step: about 2 minutes for 45k pairs on 2 CPU cores, once per run); the epoch is extrapolated.
    need = (max(args.lora_steps, args.full_steps) + 2) * args.batch_size * args.grad_accum
    sample_path = args.work / "pairs-sample.parquet"
    pairs.sample(min(need, len(pairs)), random_state=0).to_parquet(sample_path, index=False)
    ckpt = False if args.no_checkpointing else None
    runs = results.setdefault("runs", [])
    runs.append(run_training("weighted DPO, LoRA r=16", sample_path, args.work / "base", args.work / "wdpo",
                             lora=True, steps=args.lora_steps, batch=args.batch_size, accum=args.grad_accum,
                             n_pairs=len(pairs), tokens_per_seq=tps, checkpointing=ckpt))
    save()
    if args.eval_n:
        results["evaluate"] = run_eval(args.work / "wdpo", pairs, args.eval_n, 32)
        save()
    if args.full_steps:
        runs.append(run_training("weighted DPO, full fine-tuning", sample_path, args.work / "base",
                                 args.work / "full", lora=False, steps=args.full_steps, batch=args.batch_size,
                                 accum=args.grad_accum, n_pairs=len(pairs), tokens_per_seq=tps,
                                 checkpointing=ckpt))
        save()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
