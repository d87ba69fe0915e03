"""The audit as a Markdown report with tables and plots."""

from __future__ import annotations

from pathlib import Path

from dl2llm.plots import plt, save_figure


def _pct(stat: dict) -> str:
    if stat.get("n", 0) == 0:
        return "n/a"
    return f"{100 * stat['value']:.1f}% [{100 * stat['low']:.1f}, {100 * stat['high']:.1f}]"


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def likelihood_section(name: str, scores: dict) -> str:
    rows = []
    for category, summary in [("overall", scores["overall"]), *scores["by_category"].items()]:
        ss = summary["stereotype_score"]
        row = [category, str(ss["n"]), _pct(ss)]
        if "language_model_score" in summary:
            row += [_pct(summary["language_model_score"]), f"{summary['icat']:.1f}"]
        rows.append(row)
    header = ["category", "n", "stereotype score (95% CI)"]
    if "language_model_score" in scores["overall"]:
        header += ["LM score (95% CI)", "ICAT"]
    n = scores["overall"]["stereotype_score"]["n"]
    scored = f"{n} of {scores['n_available']} rows" if "n_available" in scores else f"{n} rows"
    return f"### {name} ({scored})\n\n50% = no preference.\n\n" + table(header, rows)


def bbq_section(results: dict) -> str:
    rows = []
    for when in ("before", "after"):
        for context in ("ambiguous", "disambiguated"):
            scores = results[when][context]
            bias = scores["bias_score_interval"]
            rows.append(
                [when, context, str(bias["n"]), _pct(scores["accuracy"]),
                 f"{_num(bias['mean'])} [{_num(bias['low'])}, {_num(bias['high'])}]"]
            )  # fmt: skip
    instruction = results["instruction_after"]
    gender_rows = [
        [when, *(f"{by_gender['by_group'][g]:.3f} (n={by_gender['n_by_group'][g]})"
                 if g in by_gender["by_group"] else "n/a (n=0)" for g in ("female", "male")),
         f"{by_gender['difference']:.3f} [{by_gender['difference_interval']['low']:.3f}, "
         f"{by_gender['difference_interval']['high']:.3f}]"]
        for when in ("before", "after")
        if (by_gender := results[when]["disambiguated"].get("accuracy_by_gender", {})).get("n")
    ]  # fmt: skip
    parts = [
        "### BBQ (gender identity)",
        f"Mitigation instruction (after): *{instruction}*",
        table(["prompt", "context", "n", "accuracy (95% CI)", "bias score (95% CI)"], rows),
    ]
    if gender_rows:
        parts += [
            "Disambiguated accuracy by the gender of the right answer (fairlearn `MetricFrame`; "
            "difference with a 95% bootstrap interval):",
            table(["prompt", "female", "male", "difference (95% CI)"], gender_rows),
        ]
    return "\n\n".join(parts)


def probe_table(probes: dict) -> str:
    rows = []
    for source, by_attribute in probes.items():
        for attribute, stats in by_attribute.items():
            gap = stats["score_gap"]
            rows.append(
                [
                    source,
                    attribute,
                    str(stats["flip_rate"]["n"]),
                    _pct(stats["flip_rate"]),
                    f"{_num(gap['value'], 4)} [{_num(gap['low'], 4)}, {_num(gap['high'], 4)}]",
                    f"{stats['abs_score_gap']['value']:.4f}",
                ]
            )
    header = ["pairs", "attribute", "n", "flip rate (95% CI)", "score gap (95% CI)", "mean abs gap"]
    return table(header, rows)


def _interval(stat: dict, scale: float = 1.0, digits: int = 4) -> str:
    values = [scale * stat[k] for k in ("value", "low", "high")]
    return f"{values[0]:+.{digits}f} [{values[1]:+.{digits}f}, {values[2]:+.{digits}f}]"


CLASSIFIERS = {"deployed": "deployed (week 3)", "control": "control", "cda": "CDA"}


def cda_section(cda: dict) -> str:
    """Accuracy and probe statistics of the deployed, control and CDA classifiers."""
    config = cda["fine_tune_config"]
    parts = [
        "### Counterfactual data augmentation",
        f"Control and CDA start from the deployed weights and are fine-tuned for "
        f"{config['epochs']} epoch(s) (learning rate {config['learning_rate']}, batch "
        f"{config['batch_size']}, same seed) on {cda['n_fine_tune']} sentences each: the same "
        f"training sentences plus {cda['n_swapped_copies']} extra copies of those with an "
        "attribute word, unchanged for the control and attribute-swapped for CDA. Test: "
        f"{cda['n_test']} sentences. Differences are paired, with 95% paired-bootstrap "
        "intervals (one fine-tuning seed: seed-to-seed spread is not included).",
    ]
    accuracy_rows = [
        [title, _pct(cda["classifiers"][name]["test_accuracy"]),
         f"{cda['classifiers'][name]['f1']:.3f}"]
        for name, title in CLASSIFIERS.items()
    ]  # fmt: skip
    parts.append(table(["classifier", "test accuracy (95% CI)", "F1"], accuracy_rows))
    parts.append(
        "Accuracy change, CDA - deployed: "
        f"{_interval(cda['cda_vs_deployed']['test_accuracy'], 100, 1)} points; "
        f"CDA - control: {_interval(cda['cda_vs_control']['test_accuracy'], 100, 1)} points."
    )
    rows = []
    for source, by_attribute in cda["classifiers"]["deployed"]["probes"].items():
        for attribute in by_attribute:
            stats = [cda["classifiers"][name]["probes"][source][attribute] for name in CLASSIFIERS]
            versus = [cda[f"cda_vs_{ref}"][source][attribute] for ref in ("control", "deployed")]
            rows.append(
                [source, attribute, str(stats[0]["flip_rate"]["n"])]
                + [f"{100 * s['flip_rate']['value']:.1f}%" for s in stats]
                + [f"{s['abs_score_gap']['value']:.4f}" for s in stats]
                + [_interval(v["abs_score_gap"]) for v in versus]
                + [_interval(versus[0]["flip_rate"], 100, 1)]
            )
    header = ["pairs", "attribute", "n", "flips deployed", "flips control", "flips CDA",
              "abs gap deployed", "abs gap control", "abs gap CDA",
              "abs gap CDA - control (95% CI)", "abs gap CDA - deployed (95% CI)",
              "flips CDA - control, points (95% CI)"]  # fmt: skip
    parts += ["#### Before and after, per attribute", table(header, rows)]
    for name, title in CLASSIFIERS.items():
        parts += [f"#### Probes: {title}", probe_table(cda["classifiers"][name]["probes"])]
    return "\n\n".join(parts)


def clp_section(clp: dict) -> str:
    """Baseline vs counterfactual logit pairing on the held-out probe, overall and per attribute."""
    config, gaps = clp["config"], clp["gaps"]
    accuracy = clp["accuracy_change_pts"]
    tuning = config["fine_tune"]
    rows = [
        [attribute, f"{g['baseline_signed_gap']:+.4f}", f"{g['clp_signed_gap']:+.4f}",
         f"{g['baseline_abs_gap']:.4f}", f"{g['clp_abs_gap']:.4f}",
         f"{_num(g['abs_gap_reduction']['mean'], 4)} [{_num(g['abs_gap_reduction']['low'], 4)}, "
         f"{_num(g['abs_gap_reduction']['high'], 4)}]"]
        for attribute, g in [("all", gaps), *clp["by_attribute"].items()]
    ]  # fmt: skip
    header = ["attribute", "signed gap baseline", "signed gap CLP", "abs gap baseline",
              "abs gap CLP", "abs gap reduction (95% CI)"]  # fmt: skip
    seeds = ", ".join(f"{r:+.4f}" for r in gaps["abs_gap_reduction_by_seed"])
    return "\n\n".join([
        "### Counterfactual logit pairing (Garg et al., 2019)",
        f"Both arms start from the deployed weights and are fine-tuned on the same "
        f"{config['n_train']} training sentences ({tuning['epochs']} epoch, batch "
        f"{tuning['batch_size']}, learning rate {tuning['learning_rate']}) with the same "
        f"{clp['n_training_pairs']} counterfactual pairs in the same order, seeds "
        f"{', '.join(map(str, config['seeds']))}; the baseline with pairing weight 0, CLP "
        f"with weight {config['weight']}. Probe: {clp['n_probe_pairs']} pairs from templates "
        "and names that the pairing term never saw (probe names: "
        f"{', '.join(clp['probe_names'])}). Deployed classifier on the probe: abs gap "
        f"{clp['deployed_abs_gap']:.4f}, test accuracy {100 * clp['deployed_accuracy']:.1f}%. "
        "Intervals: 95% bootstrap over seeds and probe pairs.",
        table(header, rows),
        f"Reduction per seed: {seeds}. Test accuracy: baseline "
        f"{100 * accuracy['baseline_accuracy']:.1f}%, CLP {100 * accuracy['clp_accuracy']:.1f}%,"
        f" change {_num(accuracy['mean'], 2)} [{_num(accuracy['low'], 2)}, "
        f"{_num(accuracy['high'], 2)}] points.",
    ])  # fmt: skip


def fairness_section(fairness: dict) -> str:
    """Per-gender accuracy and error rates of each classifier, and the largest gaps."""
    rows = []
    for name, title in CLASSIFIERS.items():
        result = fairness[name]
        if not result["n_pairs"]:
            continue
        for metric, gap in result["gap_intervals"].items():
            by_group = result["by_group"][metric]
            rows.append(
                [title, metric.replace("_", " "), f"{by_group['female']:.3f}",
                 f"{by_group['male']:.3f}", f"{result['difference'][metric]:.3f}",
                 f"[{gap['low']:.3f}, {gap['high']:.3f}]"]
            )  # fmt: skip
    n_pairs = fairness["deployed"]["n_pairs"]
    header = ["classifier", "metric", "female", "male", "difference", "95% CI"]
    return (
        f"#### Group fairness by gender ({n_pairs} labelled test sentences, each as female and "
        "as male)\n\nfairlearn `MetricFrame` on the test sentences that mention one gender and "
        "their gender-swapped twins (same label); difference = largest minus smallest group, "
        "with a 95% bootstrap interval over the sentences.\n\n" + table(header, rows)
    )


def sentiment_section(results: dict) -> str:
    weat_rows = [
        [space, row["test"], str(row["n_targets"]), _num(row["effect_size"], 2),
         "n/a" if row["p_value"] is None else f"{row['p_value']:.4f}"]
        for space, rows in results["weat"].items()
        for row in rows
    ]  # fmt: skip
    parts = [
        f"### Counterfactual probes ({results['n_probe_pairs']} pairs)",
        "Score gap = p(positive | original) - p(positive | swapped); the original has the "
        "European-American name, the male word, the Western nationality, the Christian word.",
        cda_section(results["cda"]),
        clp_section(results["clp"]),
        fairness_section(results["cda"]["group_fairness"]),
        "### WEAT (Caliskan et al., 2017)",
        table(["embeddings", "test", "n per target set", "effect size d", "p"], weat_rows),
    ]
    return "\n\n".join(parts)


def markdown_report(model: str, results: dict, plots: list[str], quick: bool) -> str:
    """The whole report for one audited model."""
    parts = [f"# Bias audit: {model}" + (" (quick mode: tiny samples)" if quick else "")]
    if "crows_pairs" in results:
        parts.append(likelihood_section("CrowS-Pairs", results["crows_pairs"]))
        parts.append(likelihood_section("StereoSet", results["stereoset"]))
    if "bbq" in results:
        parts.append(bbq_section(results["bbq"]))
    if "cda" in results:
        parts.append(sentiment_section(results))
    parts += [f"![{plot}]({plot})" for plot in plots]
    parts.append("## Dataset licences")
    parts += [f"- **{name}**: {text}" for name, text in results["licences"].items()]
    parts.append("## Known limitations")
    parts += [f"- **{name}**: {text}" for name, text in results["limitations"].items()]
    return "\n\n".join(parts) + "\n"


def _bars(ax, labels: list[str], stats: list[dict], offset=0.0, label="", width=0.4):
    values = [s["value"] for s in stats]
    errors = [[s["value"] - s["low"] for s in stats], [s["high"] - s["value"] for s in stats]]
    positions = [i + offset for i in range(len(labels))]
    ax.bar(positions, values, width=width, yerr=errors, capsize=3, label=label or None)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")


def plot_audit(model: str, results: dict, out_dir: Path) -> list[str]:
    """PNG plots of the audit; returns their file names (relative to ``out_dir``)."""
    written = []
    if "crows_pairs" in results:
        by_category = results["crows_pairs"]["by_category"]
        fig, ax = plt.subplots(figsize=(7, 4))
        _bars(ax, list(by_category), [s["stereotype_score"] for s in by_category.values()])
        ax.axhline(0.5, color="grey", linestyle="--")
        ax.set(ylabel="stereotype score", title=f"CrowS-Pairs, {model} (95% Wilson CI)")
        written.append(_save(fig, out_dir / f"bias_audit_{model}_crows.png"))
    if "cda" in results:
        written.append(_plot_cda(results["cda"], out_dir / f"bias_audit_{model}_cda.png"))
    return written


def _plot_cda(cda: dict, path: Path) -> str:
    attributes = list(cda["classifiers"]["deployed"]["probes"]["template"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, statistic, label in (
        (axes[0], "abs_score_gap", "mean |score gap|"),
        (axes[1], "flip_rate", "flip rate"),
    ):
        for offset, name in zip((-0.27, 0.0, 0.27), CLASSIFIERS, strict=True):
            probes = cda["classifiers"][name]["probes"]["template"]
            stats = [probes[a][statistic] for a in attributes]
            _bars(ax, attributes, stats, offset, CLASSIFIERS[name], width=0.27)
        ax.set(ylabel=label, title=f"Templated probes: {label} (95% CI)")
        ax.legend()
    return _save(fig, path)


def _save(fig, path: Path) -> str:
    return save_figure(fig, path).name
