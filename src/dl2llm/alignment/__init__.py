"""Alignment from preferences: RLHF's reward model and PPO, and DPO.

* :mod:`dl2llm.alignment.preferences` -- a preference dataset from a fixed labeler;
* :mod:`dl2llm.alignment.reward` -- the Bradley-Terry reward model;
* :mod:`dl2llm.alignment.ppo` -- PPO with a value head, GAE and a KL penalty;
* :mod:`dl2llm.alignment.dpo` -- the DPO loss and a DPO training loop;
* :mod:`dl2llm.alignment.rlhf` -- all of it end to end on the project's GPT-2.
"""

from dl2llm.alignment.dpo import completion_logps, dpo_loss

__all__ = ["completion_logps", "dpo_loss"]
