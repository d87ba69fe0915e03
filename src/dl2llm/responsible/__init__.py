"""Responsible AI: measuring and mitigating bias, and reporting it in model cards.

- :mod:`~.benchmarks`: loaders, licences and known limitations of CrowS-Pairs, StereoSet, BBQ
- :mod:`~.likelihood_bias`: stereotype scores of causal LMs by sentence log-likelihood
- :mod:`~.bbq`: BBQ accuracy and bias score (Parrish et al., 2022), prompt-level mitigation
- :mod:`~.counterfactual`: counterfactual probes and data augmentation for a classifier
- :mod:`~.weat`: the Word Embedding Association Test (Caliskan et al., 2017)
- :mod:`~.mitigation`: counterfactual data augmentation, measured before and after
- :mod:`~.audit`, :mod:`~.report`: the whole audit and its Markdown report
- :mod:`~.model_card`: model cards (Mitchell et al., 2019)
"""

from dl2llm.responsible.model_card import ModelCard, model_card

__all__ = ["ModelCard", "model_card"]
