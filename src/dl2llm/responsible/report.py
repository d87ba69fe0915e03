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
    return f"### {name}\n\n50% = no preference.\n\n" + table(header, rows)


def bbq_section(results: dict) -> str:
    rows = []
    for when in ("before", "after"):
        for context in ("ambiguous", "disambiguated"):
            scores = results[when][context]
            rows.append([when, context, _pct(scores["accuracy"]), _num(scores["bias_score"])])
    instruction = results["instruction_after"]
    return (
        "### BBQ (gender identity)\n\nMitigation instruction (after): "
        f"*{instruction}*\n\n"
        + table(["prompt", "context", "accuracy (95% CI)", "bias score"], rows)
    )


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


def sentiment_section(results: dict) -> str:
    cda = results["cda"]
    parts = ["### Counterfactual probes: week 3 classifier"]
    week3 = results["week3_classifier"]
    parts.append(week3["skipped"] if "skipped" in week3 else probe_table(week3))
    parts.append(
        f"### Counterfactual data augmentation ({cda['n_train']} -> {cda['n_train_augmented']} "
        f"training texts, {cda['n_test']} test texts)"
    )
    accuracy_rows = [
        [when, _pct(cda[when]["test_accuracy"]), f"{cda[when]['f1']:.3f}"]
        for when in ("before", "after")
    ]
    parts.append(table(["classifier", "test accuracy (95% CI)", "F1"], accuracy_rows))
    parts.append(f"Accuracy change: {cda['accuracy_change_points']:+.1f} points.")
    for when in ("before", "after"):
        parts += [f"#### Probes {when} CDA", probe_table(cda[when]["probes"])]
    weat_rows = [
        [space, row["test"], str(row["n_targets"]), _num(row["effect_size"], 2),
         "n/a" if row["p_value"] is None else f"{row['p_value']:.4f}"]
        for space, rows in results["weat"].items()
        for row in rows
    ]  # fmt: skip
    parts += [
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


def _bars(ax, labels: list[str], stats: list[dict], offset: float = 0.0, label: str = ""):
    values = [s["value"] for s in stats]
    errors = [[s["value"] - s["low"] for s in stats], [s["high"] - s["value"] for s in stats]]
    positions = [i + offset for i in range(len(labels))]
    ax.bar(positions, values, width=0.4, yerr=errors, capsize=3, label=label or None)
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
        attributes = list(results["cda"]["before"]["probes"]["template"])
        fig, ax = plt.subplots(figsize=(7, 4))
        for offset, when in ((-0.2, "before"), (0.2, "after")):
            probes = results["cda"][when]["probes"]["template"]
            _bars(ax, attributes, [probes[a]["flip_rate"] for a in attributes], offset, when)
        ax.set(ylabel="flip rate", title="Templated counterfactual flips, before/after CDA")
        ax.legend()
        written.append(_save(fig, out_dir / f"bias_audit_{model}_cda.png"))
    return written


def _save(fig, path: Path) -> str:
    return save_figure(fig, path).name
