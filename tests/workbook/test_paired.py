"""The shared paired comparison (table of per-seed differences) and its error-bar figure."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import regkit.workbook as wb


def _results():
    rng = np.random.default_rng(0)
    rows = []
    for dataset in ("a", "b"):
        for seed in (2, 0, 1, 3):  # out of order on purpose: pairing is by seed
            base = rng.normal()
            for arm, shift in (("new", 0.5), ("old", 0.0), ("other", 0.2)):
                rows.append(
                    {
                        "dataset": dataset,
                        "arm": arm,
                        "seed": seed,
                        "accuracy": base + shift + rng.normal() * 0.1,
                        "ece": base - shift + rng.normal() * 0.01,
                    }
                )
    return pd.DataFrame(rows)


def test_paired_table_matches_an_independent_computation():
    results = _results()
    table = wb.paired_table(results, "new", ["old", "other"], ["accuracy", "ece"])
    assert len(table) == 2 * 2 * 2
    for _, row in table.iterrows():
        part = results[results.dataset == row.dataset]
        a = part[part.arm == "new"].sort_values("seed")[row.metric].to_numpy()
        b = part[part.arm == row.versus].sort_values("seed")[row.metric].to_numpy()
        d = a - b
        half = 3.182446305284263 * d.std(ddof=1) / 2  # t_{0.975, 3} · s / √4
        assert row.mean_difference == pytest.approx(d.mean())
        assert (row.low, row.high) == pytest.approx((d.mean() - half, d.mean() + half))
        t = d.mean() / (d.std(ddof=1) / 2)
        assert row.p == pytest.approx(2 * (1 - stats.t.cdf(abs(t), 3)))
        better = d < 0 if row.metric == "ece" else d > 0
        assert row.wins == int(better.sum()) and row.seeds == 4
    assert (table[table.metric == "ece"].wins == 4).all()  # ece: lower is better


def test_paired_samples_align_by_seed_and_one_seed_has_no_interval():
    results = _results()
    a, b = wb.paired_samples(results, "new", "old", "ece", dataset="a")
    assert [x - y for x, y in zip(a, b)] == pytest.approx([-0.5] * 4, abs=0.05)  # misaligned: |diff| ~ 1
    one = results[results.seed == 0]
    row = wb.paired_table(one, "new", "old", ["accuracy"]).iloc[0]
    assert row.seeds == 1 and math.isnan(row.low) and math.isnan(row.p)


def test_paired_comparison_rejects_unpaired_arms_and_bad_confidence():
    results = _results()
    with pytest.raises(ValueError, match="same seeds"):
        wb.paired_samples(results[~((results.arm == "old") & (results.seed == 1))], "new", "old", "ece")
    with pytest.raises(ValueError, match="confidence"):
        wb.paired_table(results, "new", "old", ["ece"], confidence=1.5)


def test_arm_errorbars_draws_one_point_per_group_and_arm():
    fig = wb.arm_errorbars(_results(), ["accuracy", "ece"], ["old", "other", "new"], titles={"ece": "ECE"})
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["accuracy", "ECE"]
    assert len(axes[0].containers) == 2 * 3  # errorbar containers: groups × arms
    (legend,) = fig.legends  # one figure legend outside the panels, none inside them
    assert [t.get_text() for t in legend.get_texts()] == ["old", "other", "new"]
    assert all(ax.get_legend() is None for ax in axes)


def test_seeds_needed_is_the_ceiling_share_and_at_least_one():
    assert [wb.seeds_needed(0.8, n) for n in (1, 2, 3, 4, 5, 10)] == [1, 2, 3, 4, 4, 8]
    assert wb.seeds_needed(0.1, 3) == 1 and wb.seeds_needed(1.0, 7) == 7
    for share, n in ((0, 5), (1.5, 5), (0.8, 0), (0.8, 2.0)):
        with pytest.raises(ValueError):
            wb.seeds_needed(share, n)


def test_paired_evidence_pairs_by_seed_and_counts_the_seeds_won():
    results = _results()
    evidence = wb.paired_evidence(
        results,
        "new",
        ["old", "other"],
        "ece",
        label="{group}: new − {other} ECE",
        threshold=0,
        direction="<",
        wins=0.8,
        wins_label="{group}: share lower vs {other}",
    )
    assert [e.label for e in evidence] == [
        "a: new − old ECE",
        "a: share lower vs old",
        "a: new − other ECE",
        "a: share lower vs other",
        "b: new − old ECE",
        "b: share lower vs old",
        "b: new − other ECE",
        "b: share lower vs other",
    ]
    for paired, share in zip(evidence[::2], evidence[1::2]):
        dataset, other = paired.label[0], paired.label.split(" − ")[1].split()[0]
        part = results[results.dataset == dataset]
        a = part[part.arm == "new"].sort_values("seed").ece.to_numpy()
        b = part[part.arm == other].sort_values("seed").ece.to_numpy()
        assert paired.kind == "paired" and paired.samples == pytest.approx(a) and paired.samples_b == pytest.approx(b)
        assert paired.estimate == pytest.approx((a - b).mean())
        assert (paired.threshold, paired.direction) == (0.0, "<")
        assert share.kind == "mean" and share.samples == tuple(float(x) for x in a < b)
        assert (share.threshold, share.direction) == (4 / 4, ">=")  # ⌈0.8 · 4⌉ = 4 of 4 seeds


def test_paired_evidence_wins_follow_the_direction_and_need_a_label():
    rows = [
        {"dataset": "d", "arm": arm, "seed": s, "m": v}
        for s, (x, y) in enumerate([(1.0, 0.0), (0.0, 1.0), (2.0, 1.0), (3.0, 1.0), (5.0, 1.0)])
        for arm, v in (("x", x), ("y", y))
    ]
    results = pd.DataFrame(rows)
    higher = wb.paired_evidence(
        results, "x", "y", "m", label="{group}", threshold=0, direction=">=", wins=0.8, wins_label="won"
    )
    assert higher[1].samples == (1.0, 0.0, 1.0, 1.0, 1.0) and higher[1].threshold == pytest.approx(4 / 5)
    assert higher[1].estimate == pytest.approx(0.8) and higher[0].estimate == pytest.approx(1.4)  # (1-1+1+2+4)/5
    assert len(wb.paired_evidence(results, "x", "y", "m", label="{group}", threshold=0, direction=">")) == 1
    with pytest.raises(ValueError, match="wins_label"):
        wb.paired_evidence(results, "x", "y", "m", label="{group}", threshold=0, direction=">", wins=0.8)
