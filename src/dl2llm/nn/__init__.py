"""Week 1: neural-network foundations.

- :mod:`.mlp_numpy` -- a feedforward network with backpropagation written by hand.
- :mod:`.optimizers` -- SGD, momentum, Adam and AdamW from scratch.
- :mod:`.mlp` -- the same network in PyTorch, and a training loop with early stopping.
- :mod:`.ngram` -- an interpolated Kneser-Ney n-gram language model (the baseline).
- :mod:`.lstm_lm` -- an LSTM language model with checkpoint/resume and sampling.
"""
