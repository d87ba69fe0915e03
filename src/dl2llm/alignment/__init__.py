"""Alignment from preferences: the DPO loss (see :mod:`dl2llm.alignment.dpo`)."""

from dl2llm.alignment.dpo import completion_logps, dpo_loss

__all__ = ["completion_logps", "dpo_loss"]
