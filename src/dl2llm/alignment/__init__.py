"""Alignment from preferences: RLHF's reward model and PPO, DPO, best-of-N, on SmolLM2.

* :mod:`dl2llm.alignment.preferences` -- the task (reviews of an asked-for polarity),
  its true reward, preference pairs;
* :mod:`dl2llm.alignment.reward` -- the Bradley-Terry reward model of (prompt, completion);
* :mod:`dl2llm.alignment.policy` -- a LoRA policy whose reference is its adapter switched off;
* :mod:`dl2llm.alignment.ppo` -- PPO with a value head, GAE and a KL penalty;
* :mod:`dl2llm.alignment.dpo` -- the DPO loss and a DPO training loop;
* :mod:`dl2llm.alignment.rlhf` -- all of it end to end, plus best-of-N;
* :mod:`dl2llm.alignment.rlhf_trl` -- ``trl``'s GRPO on the same task, as a reference;
* :mod:`dl2llm.alignment.rlhf_frontier` -- comparing methods at a matched KL.
"""

from dl2llm.alignment.dpo import completion_logps, dpo_loss

__all__ = ["completion_logps", "dpo_loss"]
