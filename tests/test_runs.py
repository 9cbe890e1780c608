"""corrode.runs.MetricsLog: appends survive reopening; truncation for resume."""

from corrode.runs import MetricsLog


def test_append_reopen_truncate(tmp_path) -> None:
    log = MetricsLog(tmp_path / "metrics.csv")
    for step in range(1, 6):
        log.append({"step": step, "loss": 1.0 / step})
    reopened = MetricsLog(tmp_path / "metrics.csv")
    assert reopened.columns == ["step", "loss"]
    reopened.truncate_after("step", 3)
    rows = MetricsLog(tmp_path / "metrics.csv").rows()
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert float(rows[1]["loss"]) == 0.5
