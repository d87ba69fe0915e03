"""Bias audit: stereotype benchmarks, counterfactual probes, WEAT, and two mitigations.

For the offline instruct LLM (SmolLM2-135M) and the project's GPT-2 we score CrowS-Pairs
and StereoSet by sentence log-likelihood (share of pairs where the stereotypical sentence
wins: 50% is unbiased), per category with 95% Wilson intervals. SmolLM2 also answers BBQ
(gender identity) before and after a prompt-level mitigation. The deployed week 3
sentiment classifier is probed with counterfactual pairs (swapped names, gendered words,
nationalities, religions: flip rate and score gap); then two copies of it are fine-tuned
further, identically but for attribute-swapped copies of the training sentences (CDA) or
unchanged ones (control), and probed again (paired before/after differences, test
accuracy); WEAT runs on word2vec vectors and MiniLM's contextual embeddings. Writes
``bias_audit_<model>.json`` and ``.md`` per model, plots, the sentiment classifier's model
card, and ``bias_audit.json`` with the headline numbers of this run and of the other
models' latest audits in ``--out`` made in the same mode (its wall time is theirs summed).

``--model smollm2 --adapter results/fine_tuning_pipeline_adapter.safetensors`` audits the
capstone's fine-tuned model (SmolLM2 with the LoRA adapter merged in, as the service runs
it) and saves it as ``bias_audit_smollm2_lora``, beside the base model's audit.
"""

import time
from pathlib import Path

import torch

from dl2llm.io import atomic_write_text
from dl2llm.responsible.audit import ADAPTED, MODELS, headline, run_audit
from dl2llm.responsible.cards import write_model_card
from dl2llm.responsible.report import markdown_report, plot_audit
from dl2llm.results import load_results, print_metrics, save_results
from dl2llm.runtime import UsageError, deliverable_parser, resolve_device, run_main, set_seed

NAME = "bias_audit"


def earlier_audits(out_dir: Path, quick: bool, skip: tuple[str, ...]) -> tuple[dict, float]:
    """The other models' audits already in ``out_dir`` (same mode).

    Returns their headline numbers and the seconds they took together.
    """
    numbers, seconds = {}, 0.0
    for model in (*MODELS, ADAPTED):
        record = load_results(f"{NAME}_{model}", out_dir)
        if model in skip or record is None or record["mode"] != ("quick" if quick else "full"):
            continue
        numbers |= {
            k: v for k, v in record["metrics"].items() if k not in ("details", "limitations")
        }
        seconds += record["wall_time_s"]
    return numbers, seconds


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--model",
        default="all",
        help=f"what to audit: {', '.join(MODELS)} or all (default: all)",
    )
    parser.add_argument(
        "--adapter",
        type=Path,
        default=None,
        help="a LoRA adapter file (from fine_tuning_pipeline.py or save_lora) to merge into "
        f"SmolLM2 before auditing it; needs --model smollm2; saved as {NAME}_{ADAPTED}",
    )
    args = parser.parse_args(argv)
    if args.model != "all" and args.model not in MODELS:
        raise UsageError(f"--model: unknown model '{args.model}' (use {', '.join(MODELS)} or all)")
    if args.adapter is not None and args.model != "smollm2":
        raise UsageError("--adapter: an adapter is audited on SmolLM2 only (add --model smollm2)")
    if args.adapter is not None and not args.adapter.is_file():
        raise UsageError(f"--adapter: file not found: {args.adapter}")
    started = time.perf_counter()
    set_seed(args.seed)
    if resolve_device(args.device).type != "cpu":
        raise UsageError("--device: the bias audit runs on the CPU only (use --device cpu)")
    config = {"model": args.model, "adapter": str(args.adapter) if args.adapter else None}
    combined, artifacts = {}, []
    audited = MODELS if args.model == "all" else (args.model,)
    for audited_model in audited:
        model_started = time.perf_counter()
        # LLM scoring is one sentence at a time (faster on one thread); the classifier
        # is fine-tuned and probed in batches of 32-64.
        torch.set_num_threads(2 if audited_model == "sentiment" else 1)
        results = run_audit(audited_model, args.quick, args.seed, adapter=args.adapter)
        model = ADAPTED if args.adapter is not None else audited_model
        plots = plot_audit(model, results, args.out)
        report = f"{NAME}_{model}.md"
        atomic_write_text(args.out / report, markdown_report(model, results, plots, args.quick))
        numbers = headline(model, results)
        save_results(
            f"{NAME}_{model}",
            {**numbers, "details": results, "limitations": results["limitations"]},
            out_dir=args.out,
            config=config,
            seed=args.seed,
            quick=args.quick,
            started=model_started,
            artifacts=[report, *plots],
        )
        combined |= numbers
        artifacts += [f"{NAME}_{model}.json", report, *plots]
        print(f"\n== {model} ==")
        print_metrics(numbers)
    skip = (ADAPTED,) if args.adapter is not None else audited
    earlier, earlier_seconds = earlier_audits(args.out, args.quick, skip=skip)
    combined = earlier | combined
    for carded in ("sentiment", ADAPTED):
        if carded in (model, *audited):
            card = write_model_card(carded, args.out, args.out / f"MODEL_CARD_{carded}.md")
            artifacts.append(card.name)
    save_results(
        NAME,
        combined,
        out_dir=args.out,
        config=config,
        seed=args.seed,
        quick=args.quick,
        started=started - earlier_seconds,  # wall time: every audit summarised here
        artifacts=artifacts,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
