"""The workbook's shared figure helpers: what each panel draws, checked against the data."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

import regkit.workbook as wb


def _history():
    rows = []
    for dataset in ("d1", "d2"):
        for noise in ("sym", "asym"):
            for arm in ("CE", "ELR"):
                for seed in (0, 1, 2):
                    for epoch in (1, 2, 3):
                        rows.append(
                            {
                                "dataset": dataset,
                                "noise": noise,
                                "arm": arm,
                                "seed": seed,
                                "epoch": epoch,
                                "acc": seed + 10 * epoch + (arm == "ELR") + 100 * (dataset == "d2"),
                            }
                        )
    return pd.DataFrame(rows)


def test_line_grid_draws_each_hue_mean_in_its_panel():
    history = _history()
    fig = wb.line_grid(
        history,
        x="epoch",
        y="acc",
        hue="arm",
        rows=["dataset"],
        cols=["noise"],
        title="{dataset}, {noise} 40%",
        ylabel="accuracy",
        ylim=(0, 200),
        sharey=True,
    )
    axes = np.array(fig.axes).reshape(2, 2)
    assert [ax.get_title() for ax in axes.flat] == ["d1, sym 40%", "d1, asym 40%", "d2, sym 40%", "d2, asym 40%"]
    assert axes[0, 0].get_legend() is not None and all(ax.get_legend() is None for ax in axes.flat[1:])
    assert all(ax.get_ylim() == (0, 200) and ax.get_ylabel() == "accuracy" for ax in axes.flat)
    lines = axes[1, 0].get_lines()[:2]  # CE then ELR on (d2, sym): mean over seeds 0..2 = 1 + 10 e + 100 (+1)
    assert lines[0].get_ydata() == pytest.approx([111, 121, 131])
    assert lines[1].get_ydata() == pytest.approx([112, 122, 132])


def test_line_grid_rows_can_combine_columns():
    fig = wb.line_grid(
        _history(),
        x="epoch",
        y="acc",
        hue="noise",
        rows=["dataset", "arm"],
        cols=["noise"],
        title="{arm} · {dataset}",
        ylabel="y",
    )
    assert len(fig.axes) == 4 * 2
    assert [ax.get_title() for ax in fig.axes[::2]] == ["CE · d1", "ELR · d1", "CE · d2", "ELR · d2"]


def test_annotated_heatmaps_annotate_every_cell_with_its_format():
    values = pd.DataFrame([[0.914, 0.5], [0.25, 1.0]], index=["r1", "r2"], columns=["a", "b"])
    ranks = values.rank(axis=1, ascending=False)
    fig = wb.annotated_heatmaps([("accuracy", values, ".2f", "viridis"), ("rank", ranks, ".0f", "viridis_r")])
    left, right = fig.axes
    assert (left.get_title(), right.get_title()) == ("accuracy", "rank")
    assert [t.get_text() for t in left.texts] == ["0.91", "0.50", "0.25", "1.00"]
    assert [t.get_text() for t in right.texts] == ["1", "2", "2", "1"]
    assert [t.get_text() for t in left.get_yticklabels()] == ["r1", "r2"]


def test_image_grid_titles_each_image_and_hides_spare_panels():
    images = np.arange(5 * 4 * 4, dtype=float).reshape(5, 4, 4)
    fig = wb.image_grid(images, [f"#{i}" for i in range(5)], ncols=3)
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:5]] == ["#0", "#1", "#2", "#3", "#4"]
    assert np.array_equal(fig.axes[4].get_images()[0].get_array(), images[4])
    assert not fig.axes[5].axison
    with pytest.raises(ValueError, match="one title per image"):
        wb.image_grid(images, ["a"], ncols=3)


def test_stream_curves_draw_the_seed_mean_and_its_t_interval():
    from scipy import stats

    samples = np.array([[0.1, 0.2, 0.3, 0.4], [0.3, 0.2, 0.5, 0.4], [0.2, 0.5, 0.1, 0.1]])
    one_seed = samples[:1]
    fig = wb.stream_curves(
        {"continual": {"A": samples, "B": 1 - samples}, "gradual": {"A": one_seed}}, stages_per_round={"continual": 2}
    )
    first, second = fig.axes[0], fig.axes[1]
    assert [line.get_label() for line in first.get_lines()[:2]] == ["A", "B"]
    np.testing.assert_allclose(first.get_lines()[0].get_ydata(), samples.mean(0))
    np.testing.assert_allclose(first.get_lines()[1].get_ydata(), 1 - samples.mean(0))
    half = stats.t.ppf(0.975, 2) * samples.std(0, ddof=1) / np.sqrt(3)
    band = first.collections[0].get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose(
        [band.min(), band.max()], [(samples.mean(0) - half).min(), (samples.mean(0) + half).max()]
    )
    assert [t.get_text() for t in first.get_xticklabels()] == ["1", "2"] and first.get_xlabel() == "round"
    assert len(second.collections) == 0 and second.get_xlabel() == "step along the stream"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["A", "B"]
