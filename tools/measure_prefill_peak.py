"""Measure the peak of live activation bytes of a text prefill under transformers, per attention implementation.

vramcore's transformers engine counts a prompt's prefill as one decoder layer's activations per token
(``include/vramcore/activations.h``) plus, when the attention is not fused, what grows with the square of
the prompt: under ``eager`` the (batch, heads, s, s) scores, their fp32 softmax and its cast back
(``attn_weights`` of each ``eager_attention_forward``), and the (batch, 1, s, s) additive masks, one per
attention kind (full, sliding); under ``sdpa`` the boolean (batch, 1, s, s) mask a sliding-window layer
passes once the prompt reaches the window.  This script measures those facts on the CPU, tensor by tensor,
with the ``LiveBytes`` dispatch mode of ``tools/measure_encoder_peak.py``: a two-layer copy of each card's
config (one layer of each attention kind where the model has two), a 512-wide MLP, a 256-token vocabulary,
random weights, bf16 (and fp32 for one geometry), ``torch.inference_mode``, ``use_cache=False``,
``logits_to_keep=1`` and an all-ones ``attention_mask`` as ``generate()`` passes.  Prompts of equally
spaced lengths give the quadratic coefficient of the peak as a second difference (exact while the peak
stays in one operator); two batches give its growth in the batch.

It records, for every run, the peak above the inputs and parameters, the operator it is reached in, and
the implementation transformers resolved (``config._attn_implementation``) for the requested one --
``None`` is transformers' default, which falls back to eager for the classes that do not support sdpa
(Gemma-2: ``_supports_sdpa = False``, attention logit soft-capping; gpt-oss: attention sinks); asking
those for ``"sdpa"`` explicitly raises, and the error is recorded.

CPU figures: on CUDA the fused kernels differ, and PyTorch converts a boolean mask to an additive one in
the query's dtype before the memory-efficient kernel (aten/src/ATen/native/transformers/attention.cpp,
``convert_boolean_attn_mask``) -- a transient vramcore adds from that source, not from here.

Usage
-----
::

    /tmp/tfenv/bin/python tools/measure_prefill_peak.py     # torch 2.13.0, transformers 5.24.0

``--breakdown`` lists, for the runs of :data:`BREAKDOWNS`, every tensor live at the peak (the operator that
made it, its shape, dtype and bytes) and keeps the file's other entries: what the per-token rule of
``include/vramcore/activations.h`` counts under transformers (the embedding output held to the end of the
forward, the rotary cos / sin, the int64 position ids, the layer input and its normed copy, q with its three
rotary temporaries, k, v; with fewer heads an RMSNorm's fp32 upcast and product, or the MLP's down
projection beside the layer input the model's loop holds).

Options: ``--output`` (default ``tests/data/prefill_peak_measured.json``); ``--only CARD`` re-runs one
card's geometries and keeps the other runs of the file.  No network.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure_encoder_peak import LiveBytes  # noqa: E402

CARDS = Path(__file__).resolve().parents[1] / "vramcore" / "model" / "data"
VOCAB = 256
#: A narrow MLP (the card's is 6-16 x wider): the prefill's peak is then the attention's at every prompt
#: length measured, which is what the ladder's second difference needs, and a bf16 matmul on the CPU is slow.
MLP = 512

#: (card, changes to its config, attention implementations asked for, dtype, prompt ladder, batches)
GEOMETRIES: list[tuple[str, dict[str, object], tuple[str | None, ...], str, tuple[int, ...], tuple[int, ...]]] = [
    ("gemma-2-2b", {}, (None, "sdpa"), "bfloat16", (1024, 1536, 2048), (1, 2)),
    ("gpt-oss-20b", {"num_local_experts": 4, "num_experts_per_tok": 2, "experts_per_token": 2,
                     "layer_types": ["sliding_attention", "full_attention"]},
     (None, "sdpa"), "bfloat16", (512, 768, 1024), (1, 2)),
    ("llama-3.2-1b", {}, ("eager", None), "bfloat16", (1024, 1536, 2048), (1, 2)),
    ("llama-3.2-1b", {}, ("eager",), "float32", (512, 768, 1024), (1,)),
    ("gemma-3-1b", {"layer_types": ["sliding_attention", "full_attention"]},
     (None,), "bfloat16", (256, 511, 512, 1024, 1536, 2048, 2560), (1, 2)),
]


#: (card, changes, implementation, prompt length, dtype) of the per-tensor listings (``--breakdown``), batch
#: 1: Llama's attention peak; with 8 of its 32 heads an RMSNorm's (bf16) and the down projection's (fp32);
#: Gemma-2's and Gemma-3's RMSNorm in a four-norm layer.
BREAKDOWNS: list[tuple[str, dict[str, object], str | None, int, str]] = [
    ("llama-3.2-1b", {}, None, 384, "bfloat16"),
    ("llama-3.2-1b", {"num_attention_heads": 8, "num_key_value_heads": 2}, None, 384, "bfloat16"),
    ("llama-3.2-1b", {"num_attention_heads": 8, "num_key_value_heads": 2}, None, 384, "float32"),
    ("gemma-2-2b", {"num_attention_heads": 2, "num_key_value_heads": 1}, None, 384, "bfloat16"),
    ("gemma-3-1b", {"layer_types": ["sliding_attention", "full_attention"]}, None, 384, "bfloat16"),
]


class LiveTensors(LiveBytes):
    """:class:`LiveBytes` keeping, at each new peak, every live storage's (operator, shape, dtype, bytes)."""

    def __init__(self) -> None:
        super().__init__()
        self.made: dict[int, tuple[str, list[int], str]] = {}
        self.at_peak: list[tuple[str, list[int], str, int]] = []

    def _record(self, out: object, op: str) -> None:
        import torch

        tensors = [out] if isinstance(out, torch.Tensor) else [t for t in (out if isinstance(out, (tuple, list))
                                                                           else ()) if isinstance(t, torch.Tensor)]
        for t in tensors:
            ptr = t.untyped_storage().data_ptr()
            if ptr not in self.sizes and ptr not in self.external:
                self.made[ptr] = (op, list(t.shape), str(t.dtype).replace("torch.", ""))
        peak = self.peak
        super()._record(out, op)
        if self.peak > peak:
            self.at_peak = [(*self.made[p], n) for p, n in self.sizes.items()]


def breakdown(card: str, changes: dict[str, object], impl: str | None, context: int,
              dtype_name: str) -> dict[str, object]:
    """Every tensor live at the peak of one prefill of `context` tokens, largest first."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model(**card_config(card, changes))
    model = AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, dtype_name), attn_implementation=impl)
    model.eval()
    tracker = prefill(model, LiveTensors(), 1, context)
    tensors = sorted(tracker.at_peak, key=lambda t: -t[3])
    return {"card": card, "changes": changes, "attn_implementation": impl, "context": context,
            "dtype": dtype_name, "peak_bytes": tracker.peak, "peak_op": tracker.peak_op,
            "tensors": [{"op": op, "shape": shape, "dtype": dtype, "bytes": n} for op, shape, dtype, n in tensors]}


def prefill(model, tracker: LiveBytes, batch: int, context: int) -> LiveBytes:  # type: ignore[no-untyped-def]
    """Run one prefill of random tokens under `tracker`, as generate() calls the model; return the tracker."""
    import torch

    ids = torch.randint(3, VOCAB, (batch, context))
    mask = torch.ones(batch, context, dtype=torch.long)
    external = {p.untyped_storage().data_ptr() for p in model.parameters()}
    external |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    external |= {ids.untyped_storage().data_ptr(), mask.untyped_storage().data_ptr()}
    with torch.inference_mode():
        tracker.run(lambda: model(input_ids=ids, attention_mask=mask, use_cache=False, logits_to_keep=1).logits,
                    external)
    return tracker


def card_config(card: str, changes: dict[str, object]) -> dict[str, object]:
    """The card's HF config with two layers, a narrow MLP, a small vocabulary, no quantization and `changes`."""
    cfg = copy.deepcopy(json.loads((CARDS / f"{card}.json").read_text())["config"])
    cfg.pop("quantization_config", None)
    cfg.update({"num_hidden_layers": 2, "vocab_size": VOCAB, "intermediate_size": MLP, "pad_token_id": 0,
                "bos_token_id": 1, "eos_token_id": 2})
    cfg.update(changes)
    return cfg


def measure(card: str, changes: dict[str, object], impl: str | None, dtype_name: str, context: int,
            batch: int) -> dict[str, object]:
    """Peak live bytes of one prefill of `batch` x `context` tokens (or the error transformers raises)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg_dict = card_config(card, changes)
    cfg = AutoConfig.for_model(**cfg_dict)
    dtype = getattr(torch, dtype_name)
    try:
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype, attn_implementation=impl)
    except (ValueError, ImportError) as error:
        return {"error": f"{type(error).__name__}: {error}"}
    tracker = prefill(model.eval(), LiveBytes(), batch, context)
    return {"peak_bytes": tracker.peak, "peak_op": tracker.peak_op,
            "attn_implementation_used": model.config._attn_implementation}


def main() -> None:
    """Run every geometry of :data:`GEOMETRIES` and write the JSON file."""
    import torch
    import transformers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(Path(__file__).resolve().parents[1] / "tests" / "data"
                                                / "prefill_peak_measured.json"))
    parser.add_argument("--only", choices=sorted({g[0] for g in GEOMETRIES}),
                        help="re-run this card's geometries only; the file's other runs are kept")
    parser.add_argument("--breakdown", action="store_true",
                        help="list the tensors live at the peak of the BREAKDOWNS runs; the file's runs are kept")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.breakdown:
        data = json.loads(Path(args.output).read_text())
        data["breakdowns"] = [breakdown(*b) for b in BREAKDOWNS]
        Path(args.output).write_text(json.dumps(data, indent=1) + "\n")
        return
    runs = []
    if args.only:
        runs = [r for r in json.loads(Path(args.output).read_text())["runs"] if r["card"] != args.only]
    for card, changes, impls, dtype_name, ladder, batches in GEOMETRIES:
        if args.only and card != args.only:
            continue
        for impl in impls:
            for batch in batches:
                for context in ladder if batch == 1 else ladder[-2:]:
                    result = measure(card, changes, impl, dtype_name, context, batch)
                    runs.append({"card": card, "changes": changes, "attn_implementation": impl,
                                 "dtype": dtype_name, "context": context, "batch": batch, **result})
                    print(json.dumps(runs[-1]), flush=True)
                    if "error" in result:
                        break
                if "error" in runs[-1]:
                    break
    data = {"tool": "tools/measure_prefill_peak.py", "torch": torch.__version__,
            "transformers": transformers.__version__, "device": "cpu", "vocab_size": VOCAB,
            "intermediate_size": MLP, "layers": 2, "runs": runs}
    Path(args.output).write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
