"""The churn model on the CDNOW sample, end to end: import the transactions as an orders
file, run `journey report churn --until 1997-09-30`, and get Fader, Hardie & Lee's (2005)
estimates.

The reference is computed here from the file itself (each customer's x, t_x and T with the
paper's conventions: same-day purchases are one, T is the difference of dates between the
calibration end and the first purchase, in weeks) and fitted with lifetimes, so the test
does not read journey's own summary. The paper reports r = 0.243, alpha = 4.414 weeks,
a = 0.793, b = 2.426 (Table 1 of "Counting Your Customers the Easy Way").
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pytest

lifetimes = pytest.importorskip("lifetimes")

SAMPLE = Path(__file__).parent / "data" / "cdnow" / "CDNOW_sample.txt"
CALIBRATION_END = date(1997, 9, 30)
REL = 1e-3


def transactions() -> list[tuple[str, date, float]]:
    rows = []
    for line in SAMPLE.read_text().splitlines():
        customer, _master, day, _cds, dollars = line.split()
        rows.append((customer, date(int(day[:4]), int(day[4:6]), int(day[6:])), float(dollars)))
    return rows


def paper_summary() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in weeks over the calibration period, from the raw file."""
    days: dict[str, set[date]] = defaultdict(set)
    for customer, day, _ in transactions():
        if day <= CALIBRATION_END:
            days[customer].add(day)
    x, t_x, T = [], [], []
    for bought in days.values():
        first, last = min(bought), max(bought)
        x.append(len(bought) - 1)
        t_x.append((last - first).days / 7)
        T.append((CALIBRATION_END - first).days / 7)
    return np.array(x, float), np.array(t_x, float), np.array(T, float)


@pytest.fixture
def cdnow_workspace(journey_cli, tmp_path) -> None:
    orders = tmp_path / "cdnow_orders.csv"
    with orders.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["order_id", "customer_id", "ordered_at", "amount"])
        for i, (customer, day, dollars) in enumerate(transactions()):
            out.writerow([f"{customer}-{i}", customer, day.isoformat(), f"{dollars:.2f}"])
    code, out_text, err = journey_cli("import", str(orders), "--kind", "orders")
    assert code == 0, out_text + err


def test_churn_report_reproduces_the_paper_on_cdnow(cdnow_workspace, journey_cli):
    code, out, err = journey_cli("report", "churn", "--until", "1997-09-30", "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["method"] == "bg_nbd"
    assert report["customers"] == 2357
    assert report["repeat_buyers"] == 946

    x, t_x, T = paper_summary()
    assert len(x) == 2357 and int((x > 0).sum()) == 946
    ref = lifetimes.BetaGeoFitter().fit(x, t_x, T).params_
    ours = [report["r"], report["alpha"] / 7, report["a"], report["b"]]
    np.testing.assert_allclose(ours, [ref["r"], ref["alpha"], ref["a"], ref["b"]], rtol=REL)
    # The paper's published estimates, to the digits it prints.
    np.testing.assert_allclose(ours, [0.243, 4.414, 0.793, 2.426], rtol=2.5e-3)


def paper_spend() -> tuple[np.ndarray, np.ndarray]:
    """(x, average repeat spend) of the calibration period's repeat buyers, from the raw file:
    purchases of one day are one purchase, the first day is left out (the paper's m_x)."""
    spent: dict[str, dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for customer, day, dollars in transactions():
        if day <= CALIBRATION_END:
            spent[customer][day] += dollars
    x, m = [], []
    for by_day in spent.values():
        days = sorted(by_day)
        if len(days) > 1:
            x.append(len(days) - 1)
            m.append(sum(by_day[d] for d in days[1:]) / (len(days) - 1))
    return np.array(x, float), np.array(m, float)


def test_value_report_reproduces_the_gamma_gamma_fit_on_cdnow(cdnow_workspace, journey_cli):
    code, out, err = journey_cli("report", "value", "--until", "1997-09-30", "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["method"] == "models", report["fallback_reason"]
    assert report["repeat_buyers"] == 946

    x, m = paper_spend()
    assert len(x) == 946
    ref = lifetimes.GammaGammaFitter().fit(x, m).params_
    ours = [report["p"], report["q"], report["gamma"]]
    np.testing.assert_allclose(ours, [ref["p"], ref["q"], ref["v"]], rtol=REL)
    # Fader, Hardie & Lee (2005, "RFM and CLV"): p = 6.25, q = 3.74, gamma = 15.44.
    np.testing.assert_allclose(ours, [6.25, 3.74, 15.44], rtol=2e-3)
    assert report["spend_correlation"] == pytest.approx(np.corrcoef(x, m)[0, 1], abs=1e-9)
