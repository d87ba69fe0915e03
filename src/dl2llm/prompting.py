"""Prompt engineering, measured: in-context learning, label scoring and calibration.

A causal language model can classify text without any training: write a prompt
that ends where the answer should go, and read the answer off the model. With
``k`` solved examples ("demonstrations") in the prompt this is *k-shot
in-context learning* (Brown et al., 2020, "Language Models are Few-Shot
Learners"). Two ways to read the answer:

- **generate and parse**: decode a few tokens greedily and look for a label
  word in them; the model may answer something else ("The review is...") and
  that counts as wrong.
- **score the label words**: compare ``log p(" positive" | prompt)`` with
  ``log p(" negative" | prompt)`` and take the larger. One forward pass, and
  the answer is always one of the labels.

Few-shot prompting is fragile: the template, which examples are shown and
their order all move accuracy, and the model tends to repeat the label it saw
most or last ("majority" and "recency" bias). *Contextual calibration* (Zhao
et al., 2021, "Calibrate Before Use") measures that bias by asking the same
prompt about content-free inputs (``"N/A"``, ``""``, ``"[MASK]"``) and divides
it out: with ``p_cf`` their mean label probabilities, ``W = diag(p_cf)^-1`` and
``q = softmax(W p)`` (:func:`calibrate`).

Every accuracy here comes with its 95% Wilson interval, and differences between
two prompts on the same test examples with a paired bootstrap interval: with a
few hundred test examples, a 3-point difference is often noise.

The demonstrations are the same for every test example, so their keys and
values are computed once and reused (a prefix KV cache); only the query and the
label words are run per example.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from dl2llm.data import LabelledTexts

CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")
ORDERINGS = ("shuffled", "positive-last", "negative-last")
METHODS = ("log-prob", "calibrated", "generate")


@dataclass(frozen=True)
class Template:
    """How a demonstration and a query are written.

    A demonstration is ``query.format(text=...) + answer.format(label=...)``; the
    test query ends where the answer would start. ``chat`` templates are rendered
    with the tokenizer's chat template: the instruction is the system message and
    each demonstration a user turn followed by an assistant turn.
    """

    name: str
    query: str
    answer: str = " {label}"
    instruction: str = ""
    label_words: tuple[str, ...] = ("negative", "positive")
    chat: bool = False

    def continuations(self) -> list[str]:
        """The text each label would add after the query (what gets scored)."""
        return [self.answer.format(label=word) for word in self.label_words]

    def render(
        self, demonstrations: Sequence[tuple[str, int]], texts: Sequence[str], tokenizer
    ) -> tuple[str, list[str]]:
        """``(prefix, queries)``: the shared prompt start and each text's query part."""
        if self.chat:
            return self._render_chat(demonstrations, texts, tokenizer)
        shots = [
            self.query.format(text=text) + self.answer.format(label=self.label_words[label])
            for text, label in demonstrations
        ]
        blocks = ([self.instruction] if self.instruction else []) + shots
        prefix = "".join(block + "\n\n" for block in blocks)
        return prefix, [self.query.format(text=text) for text in texts]

    def _render_chat(self, demonstrations, texts, tokenizer) -> tuple[str, list[str]]:
        turns = [{"role": "system", "content": self.instruction}]
        for text, label in demonstrations:
            turns.append({"role": "user", "content": self.query.format(text=text)})
            turns.append({"role": "assistant", "content": self.label_words[label]})
        prefix = tokenizer.apply_chat_template(turns, tokenize=False)
        queries = []
        for text in texts:
            ask = {"role": "user", "content": self.query.format(text=text)}
            full = tokenizer.apply_chat_template(
                [*turns, ask], tokenize=False, add_generation_prompt=True
            )
            if not full.startswith(prefix):
                raise ValueError(f"chat template of {self.name} does not extend the prefix")
            queries.append(full[len(prefix) :])
        return prefix, queries


TEMPLATES = (
    Template(
        "review-sentiment",
        "Review: {text}\nSentiment:",
        instruction="Classify the sentiment of each movie review as positive or negative.",
    ),
    Template(
        "question-answer",
        "{text}\nQuestion: Is this movie review positive or negative?\nAnswer:",
    ),
    Template(
        "cloze-great-terrible",
        "{text} All in all, the movie was",
        label_words=("terrible", "great"),
    ),
    Template(
        "chat",
        "Review: {text}",
        answer="{label}",
        instruction="You classify the sentiment of movie reviews. "
        "Answer with one word: positive or negative.",
        chat=True,
    ),
)


def get_template(name: str) -> Template:
    """A template of :data:`TEMPLATES` by name."""
    for template in TEMPLATES:
        if template.name == name:
            return template
    raise KeyError(f"unknown template '{name}' (known: {', '.join(t.name for t in TEMPLATES)})")


def choose_demonstrations(
    train: LabelledTexts, k: int, seed: int = 0, ordering: str = "shuffled"
) -> list[tuple[str, int]]:
    """``k`` training examples, balanced between the two labels, in the given order.

    ``ordering`` is ``"shuffled"``, ``"positive-last"`` (negatives first) or
    ``"negative-last"``; an odd ``k`` adds one example of a random label.
    """
    if ordering not in ORDERINGS:
        raise ValueError(f"unknown ordering '{ordering}' (known: {', '.join(ORDERINGS)})")
    rng = np.random.default_rng(seed)
    by_label = {y: [i for i, label in enumerate(train.labels) if label == y] for y in (0, 1)}
    counts = {0: k // 2, 1: k // 2}
    if k % 2:
        counts[int(rng.integers(2))] += 1
    picked = {y: rng.choice(by_label[y], size=counts[y], replace=False).tolist() for y in (0, 1)}
    if ordering == "positive-last":
        order = picked[0] + picked[1]
    elif ordering == "negative-last":
        order = picked[1] + picked[0]
    else:
        order = rng.permutation(picked[0] + picked[1]).tolist()
    return [(train.texts[i], train.labels[i]) for i in order]


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


class PrefixScorer:
    """Runs queries after a fixed prompt prefix whose KV cache is computed once.

    Text is tokenized piece by piece (prefix, query, continuation) and the ids
    concatenated, so cached and uncached runs see exactly the same tokens.
    """

    def __init__(self, model, tokenizer, prefix: str):
        from transformers import DynamicCache

        self.model, self.tokenizer = model, tokenizer
        self.cache = DynamicCache(config=model.config)
        self.prefix_ids = _ids(tokenizer, prefix)
        if self.prefix_ids:
            with torch.no_grad():
                model(input_ids=torch.tensor([self.prefix_ids]), cache=self.cache)

    def _forward(self, ids: list[int]) -> torch.Tensor:
        """Log-probabilities after each of ``ids``, shape ``(T, V)``, extending the cache."""
        logits = self.model(input_ids=torch.tensor([ids]), cache=self.cache).logits
        return torch.log_softmax(logits[0].float(), dim=-1)

    def _check_fits(self, n_tokens: int) -> None:
        window = getattr(self.model.config, "max_position_embeddings", None)
        if window is not None and n_tokens > window:
            raise ValueError(
                f"the prompt needs {n_tokens} tokens but the model reads at most {window}: "
                "use fewer or shorter demonstrations"
            )

    def _truncate(self, length: int) -> None:
        """Drop cached keys and values beyond the first ``length`` tokens."""
        extra = self.cache.get_seq_length() - length
        if extra > 0:
            self.cache.crop(-extra)

    @torch.no_grad()
    def continuation_log_probs(self, query: str, continuations: list[list[int]]) -> list[float]:
        """``log p(continuation | prefix + query)`` summed over each continuation's tokens."""
        query_ids = _ids(self.tokenizer, query)
        after_query = len(self.prefix_ids) + len(query_ids)
        self._check_fits(after_query + max(len(tokens) for tokens in continuations))
        first = self._forward(query_ids)[-1]  # (V,): the next token after the query
        scores = []
        for tokens in continuations:
            score = first[tokens[0]].item()
            if len(tokens) > 1:
                rest = self._forward(tokens[:-1])  # (len - 1, V)
                score += rest.gather(1, torch.tensor(tokens[1:])[:, None]).sum().item()
                self._truncate(after_query)
            scores.append(score)
        self._truncate(len(self.prefix_ids))
        return scores

    @torch.no_grad()
    def generate(self, query: str, max_new_tokens: int = 4) -> str:
        """Greedy continuation of ``prefix + query`` (stops at end-of-sequence or a newline)."""
        eos = self.tokenizer.eos_token_id
        query_ids = _ids(self.tokenizer, query)
        self._check_fits(len(self.prefix_ids) + len(query_ids) + max_new_tokens)
        log_probs = self._forward(query_ids)
        new_ids: list[int] = []
        for _ in range(max_new_tokens):
            token = int(log_probs[-1].argmax())
            if token == eos:
                break
            new_ids.append(token)
            if "\n" in self.tokenizer.decode(new_ids) or len(new_ids) == max_new_tokens:
                break
            log_probs = self._forward([token])
        self._truncate(len(self.prefix_ids))
        return self.tokenizer.decode(new_ids)


def parse_answer(text: str, label_words: Sequence[str]) -> int | None:
    """The label whose word appears first in generated ``text`` (``None`` if none does)."""
    lowered = text.lower()
    found = [
        (lowered.find(w.lower()), i) for i, w in enumerate(label_words) if w.lower() in lowered
    ]
    return min(found)[1] if found else None


def label_probabilities(log_probs: np.ndarray) -> np.ndarray:
    """Softmax over the label words: ``(N, L)`` log-likelihoods -> ``(N, L)`` probabilities."""
    shifted = log_probs - log_probs.max(axis=-1, keepdims=True)
    probs = np.exp(shifted)
    return probs / probs.sum(axis=-1, keepdims=True)


def calibrate(probs: np.ndarray, content_free: np.ndarray) -> np.ndarray:
    """Contextual calibration (Zhao et al., 2021): ``softmax(diag(p_cf)^-1 p)`` per row.

    >>> calibrate(np.array([[0.7, 0.3]]), np.array([0.8, 0.2])).round(4).tolist()
    [[0.3486, 0.6514]]
    """
    scaled = probs / content_free  # (N, L): W p with W = diag(p_cf)^-1, b = 0
    return label_probabilities(scaled)


@dataclass
class PromptRun:
    """One prompt configuration's scores on a test set."""

    template: Template
    log_probs: np.ndarray  # (N, L) label-word log-likelihoods
    content_free: np.ndarray  # (L,) mean label probabilities on content-free inputs
    generated: list[str] | None = None

    def predictions(self, method: str) -> np.ndarray:
        """Predicted labels by ``"log-prob"``, ``"calibrated"`` or ``"generate"`` (-1: unparsed)."""
        if method == "log-prob":
            return self.log_probs.argmax(axis=1)
        if method == "calibrated":
            return calibrate(label_probabilities(self.log_probs), self.content_free).argmax(1)
        if method == "generate" and self.generated is not None:
            parsed = [parse_answer(text, self.template.label_words) for text in self.generated]
            return np.array([-1 if p is None else p for p in parsed])
        raise ValueError(f"no predictions for method '{method}'")


def run_prompt(
    model,
    tokenizer,
    template: Template,
    demonstrations: Sequence[tuple[str, int]],
    texts: Sequence[str],
    generate: bool = False,
    progress: bool = True,
) -> PromptRun:
    """Score (and optionally generate) every text with one template and demonstration set."""
    prefix, queries = template.render(demonstrations, texts, tokenizer)
    _, free_queries = template.render(demonstrations, CONTENT_FREE_INPUTS, tokenizer)
    scorer = PrefixScorer(model, tokenizer, prefix)
    continuations = [_ids(tokenizer, c) for c in template.continuations()]
    label = f"{template.name}, k={len(demonstrations)}"
    log_probs = np.array(
        [
            scorer.continuation_log_probs(q, continuations)
            for q in tqdm(queries, desc=label, leave=False, disable=not progress)
        ]
    )
    free = label_probabilities(
        np.array([scorer.continuation_log_probs(q, continuations) for q in free_queries])
    )
    generated = None
    if generate:
        generated = [
            scorer.generate(q)
            for q in tqdm(queries, desc=f"{label}, generate", leave=False, disable=not progress)
        ]
    return PromptRun(template, log_probs, free.mean(axis=0), generated)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (good for small ``n`` and ``p`` near 0/1)."""
    from scipy.stats import binomtest

    interval = binomtest(int(successes), int(n)).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def seed_interval(
    values: Sequence[float],
    confidence: float = 0.95,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of one value per seed and its Student-t interval.

    ``bounds`` is the range the value cannot leave (a probability's is ``(0, 1)``); the
    interval is clipped to it, since with few seeds ``mean +- half-width`` can cross it.

    >>> tuple(round(v, 3) for v in seed_interval([1.0, 2.0, 3.0]))
    (2.0, -0.484, 4.484)
    >>> tuple(round(v, 3) for v in seed_interval([0.6, 0.8, 1.0], bounds=(0, 1)))
    (0.8, 0.303, 1.0)
    """
    from scipy.stats import t

    array = np.asarray(values, dtype=float)  # (seeds,)
    mean = float(array.mean())
    if len(array) < 2:
        return mean, mean, mean
    half = t.ppf((1 + confidence) / 2, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array))
    low, high = np.clip([mean - half, mean + half], *bounds)
    return mean, float(low), float(high)


def accuracy_summary(predicted: np.ndarray, labels: Sequence[int]) -> dict[str, float]:
    """Accuracy with its 95% Wilson interval and the number of examples."""
    correct = int((np.asarray(predicted) == np.asarray(labels)).sum())
    low, high = wilson_interval(correct, len(labels))
    return {"accuracy": correct / len(labels), "low": low, "high": high, "n": len(labels)}


def paired_difference_interval(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(difference, low, high)`` of accuracy A - B on the same examples (paired bootstrap)."""
    from scipy.stats import bootstrap

    diff = np.asarray(correct_a, dtype=float) - np.asarray(correct_b, dtype=float)  # (N,)
    if np.all(diff == diff[0]):
        return float(diff[0]), float(diff[0]), float(diff[0])
    result = bootstrap(
        (diff,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return float(diff.mean()), float(interval.low), float(interval.high)


def format_accuracy(summary: dict[str, float]) -> str:
    """``'0.812 [0.770, 0.848] (n=300)'``."""
    return (
        f"{summary['accuracy']:.3f} [{summary['low']:.3f}, {summary['high']:.3f}] "
        f"(n={summary['n']})"
    )


def k_shot_grid(
    model,
    tokenizer,
    train: LabelledTexts,
    test: LabelledTexts,
    templates: Sequence[Template],
    shots: Sequence[int],
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[tuple[str, int, str], PromptRun]:
    """Run every template with ``k`` shuffled, balanced demonstrations for each ``k``.

    Keys are ``(template name, k, "shuffled")``.
    """
    runs = {}
    for template in templates:
        for k in shots:
            demos = choose_demonstrations(train, k, seed)
            run = run_prompt(model, tokenizer, template, demos, test.texts)
            runs[template.name, k, "shuffled"] = run
            summary = accuracy_summary(run.predictions("log-prob"), test.labels)
            log(f"{template.name:<22} k={k}: {format_accuracy(summary)}")
    return runs


def summary_rows(
    runs: dict[tuple, PromptRun], labels: Sequence[int], methods: Sequence[str] = METHODS
) -> list[dict]:
    """One row per (configuration, method): accuracy, 95% interval, n, share predicted positive."""
    rows = []
    for key, run in runs.items():
        for method in methods:
            if method == "generate" and run.generated is None:
                continue
            predicted = run.predictions(method)
            row = dict(zip(("template", "k", "ordering"), key, strict=False))
            row.update(method=method, **accuracy_summary(predicted, labels))
            row["predicted_positive"] = float((predicted == 1).mean())
            rows.append(row)
    return rows
