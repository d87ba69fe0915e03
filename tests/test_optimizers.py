"""Our optimizers take exactly the steps torch.optim takes (1e-6 over 25 steps)."""

from __future__ import annotations

import pytest
import torch

from dl2llm.nn.optimizers import SGD, Adam, AdamW

CASES = [
    ("sgd", SGD, torch.optim.SGD, dict(lr=0.1)),
    ("sgd+wd", SGD, torch.optim.SGD, dict(lr=0.1, weight_decay=0.05)),
    ("momentum", SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    ("nesterov", SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("adam", Adam, torch.optim.Adam, dict(lr=0.01)),
    ("adam+l2", Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    ("adamw", AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
    ("adamw-betas", AdamW, torch.optim.AdamW, dict(lr=0.003, betas=(0.8, 0.95), eps=1e-6)),
]


def make_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


@pytest.mark.parametrize("name, ours_cls, ref_cls, kwargs", CASES, ids=[c[0] for c in CASES])
def test_step_for_step_equal_to_torch(name, ours_cls, ref_cls, kwargs):
    ours_model, ref_model = make_model(0), make_model(0)
    ours = ours_cls(ours_model.parameters(), **kwargs)
    ref = ref_cls(ref_model.parameters(), **kwargs)
    torch.manual_seed(1)
    for step in range(25):
        x, y = torch.randn(16, 7), torch.randint(0, 3, (16,))
        for model, optimizer in ((ours_model, ours), (ref_model, ref)):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        for p, q in zip(ours_model.parameters(), ref_model.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=f"{name} step {step}")


def test_adamw_differs_from_adam_with_l2():
    a, b = make_model(0), make_model(0)
    opt_a = Adam(a.parameters(), lr=0.01, weight_decay=0.5)
    opt_b = AdamW(b.parameters(), lr=0.01, weight_decay=0.5)
    x, y = torch.randn(8, 7), torch.randint(0, 3, (8,))
    for model, opt in ((a, opt_a), (b, opt_b)):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert not torch.allclose(a[0].weight, b[0].weight)


def test_invalid_hyperparameters_are_refused():
    params = make_model(0).parameters()
    with pytest.raises(ValueError, match="Nesterov"):
        SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError):
        Adam(make_model(0).parameters(), lr=-1.0)
