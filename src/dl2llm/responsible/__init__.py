"""Responsible AI: measuring and mitigating bias, and reporting it in model cards.

- :mod:`~.benchmarks`: loaders, licences and known limitations of CrowS-Pairs, StereoSet, BBQ
- :mod:`~.likelihood_bias`: stereotype scores of causal LMs by sentence log-likelihood
- :mod:`~.bbq`: BBQ accuracy and bias score (Parrish et al., 2022), prompt-level mitigation
- :mod:`~.counterfactual`: counterfactual probes and data augmentation for a classifier
- :mod:`~.weat`: the Word Embedding Association Test (Caliskan et al., 2017)
- :mod:`~.mitigation`: counterfactual data augmentation, measured before and after
- :mod:`~.fairness`: accuracy and error rates per gender group (fairlearn ``MetricFrame``)
- :mod:`~.audit`, :mod:`~.report`: the whole audit and its Markdown report
- :mod:`~.cards`: model cards (Mitchell et al., 2019)
"""

__all__ = ["ModelCard", "model_card"]


def __getattr__(name: str):
    """``ModelCard`` and ``model_card`` from :mod:`~.cards`, imported on first use.

    (Lazily, so that ``python -m dl2llm.responsible.cards`` does not import itself twice.)
    """
    if name in __all__:
        from dl2llm.responsible import cards

        return getattr(cards, name)
    raise AttributeError(f"module 'dl2llm.responsible' has no attribute '{name}'")
