"""The results helpers: one line per metric on the terminal."""

from dl2llm.results import print_metrics


def test_print_metrics_aligns_scalars_and_intervals_and_skips_records(capsys):
    metrics = {"f1": 0.123456, "n": 44, "gain": {"mean": 0.1, "low": 0.02, "high": 0.19, "n": 9}}
    print_metrics(metrics | {"rows": [1, 2], "details": {"a": 1}})
    assert capsys.readouterr().out.splitlines()[1:] == [
        "metric  value",
        "f1      0.1235",
        "n       44",
        "gain    0.1 [0.02, 0.19]",
    ]
