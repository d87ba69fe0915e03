"""Bias audit: stereotype benchmarks, counterfactual probes, WEAT, and two mitigations.

For the offline instruct LLM (SmolLM2-135M) and the project's GPT-2 we score CrowS-Pairs and
StereoSet by sentence log-likelihood (share of pairs where the stereotypical sentence wins:
50% is unbiased), per category with 95% Wilson intervals: all 1,018 CrowS-Pairs rows that
ship offline, and all 4,229 StereoSet rows for GPT-2 but a stratified 1,000 for SmolLM2
(--every-pair: all). SmolLM2 also answers 400 BBQ (gender identity) questions before and
after a prompt-level mitigation (bias score with a bootstrap interval). The deployed week 3
sentiment classifier is probed with counterfactual pairs (swapped names, gendered words,
nationalities, religions: flip rate and score gap); then two copies of it are fine-tuned
further, identically but for attribute-swapped copies of the training sentences (CDA) or
unchanged ones (control), and probed again (paired before/after differences, test accuracy)
and compared by gender (accuracy, false positive and negative rates on the gender-swapped
test sentences, fairlearn's MetricFrame). Counterfactual logit pairing (Garg et al., 2019)
fine-tunes it with a penalty on the score gap of swapped pairs, against a baseline
fine-tuned identically without the penalty (3 seeds), probed on names and templates held
out from training (signed and absolute gap, reduction and accuracy change with intervals
over seeds and probe pairs). WEAT runs on word2vec vectors and MiniLM's
contextual embeddings. Writes ``bias_audit_<model>.json`` and ``.md`` per model, plots, the
sentiment classifier's model card, and ``bias_audit.json`` with the headline numbers of this
run and of the other models' latest audits in ``--out`` made in the same mode (its wall time
is theirs summed).

``--model smollm2 --adapter results/fine_tuning_pipeline_adapter.safetensors`` audits the
capstone's fine-tuned model (SmolLM2 with the LoRA adapter merged in, as the service runs
it) and saves it as ``bias_audit_smollm2_lora``, beside the base model's audit. The lesson's
code: src/dl2llm/responsible/audit_lesson.py.
"""

from pathlib import Path

from dl2llm.responsible.audit import ADAPTED, MODELS
from dl2llm.responsible.audit_lesson import (
    NAME,
    audit_and_save,
    earlier_audits,
    models_to_audit,
    write_model_cards,
)
from dl2llm.results import print_metrics
from dl2llm.runtime import UsageError, deliverable_parser, resolve_device, run_main, start_run


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
    parser.add_argument(
        "--every-pair",
        action="store_true",
        help="score every CrowS-Pairs and StereoSet row with SmolLM2 too (full runs only; "
        "about 30 minutes more than the default stratified 1,000 StereoSet items)",
    )
    run = start_run(NAME, parser, argv)
    args = run.args
    if args.every_pair and args.quick:
        raise UsageError("--every-pair: a full-run size; drop --quick")
    audited = models_to_audit(args.model, args.adapter)
    if resolve_device(args.device).type != "cpu":
        raise UsageError("--device: the bias audit runs on the CPU only (use --device cpu)")
    config = {
        "model": args.model,
        "adapter": str(args.adapter) if args.adapter else None,
        "every_pair": args.every_pair,
    }
    combined, artifacts = {}, []
    for audited_model in audited:
        model, numbers, files = audit_and_save(
            audited_model, args.quick, args.seed, args.adapter, args.out, config, args.every_pair
        )
        combined |= numbers
        artifacts += files
        print(f"\n== {model} ==")
        print_metrics(numbers)
    skip = (ADAPTED,) if args.adapter is not None else audited
    earlier, earlier_seconds = earlier_audits(args.out, args.quick, skip=skip)
    artifacts += write_model_cards(args.out, audited, adapted=args.adapter is not None)
    run.started -= earlier_seconds  # wall time: every audit summarised here
    run.save(earlier | combined, config=config, artifacts=artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
