"""Compare a fresh run with the committed reference run, claim by claim and figure by figure.

For each slug present in both: each claim's verdict and evidence (reference → new), flagged
when either changed, and the claims whose new verdict differs from the notebook's expectation, and a
side-by-side sheet ``reference | new`` of every figure, written
to ``outputs/compare/<slug>/<figure>.png``; the table goes to ``outputs/compare/COMPARE.md``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from regkit.workbook.claims import Record, SchemaError, load_record
from regkit.workbook.figures import DPI


def claim_changes(reference: Record, new: Record) -> list[dict]:
    """Per claim id (union of both runs): verdicts and evidence before and after, and the expectation."""
    ref = {c.id: c for c in reference.claims}
    cur = {c.id: c for c in new.claims}
    rows = []
    for claim_id in list(ref) + [i for i in cur if i not in ref]:
        a, b = ref.get(claim_id), cur.get(claim_id)
        rows.append(
            {
                "id": claim_id,
                "reference_verdict": a.verdict if a else "absent",
                "new_verdict": b.verdict if b else "absent",
                "expected": b.expected if b else (a.expected if a else "reproduced"),
                "reference_ours": a.ours if a else None,
                "new_ours": b.ours if b else None,
                "verdict_changed": (a and a.verdict) != (b and b.verdict),
                "value_changed": (a and a.ours) != (b and b.ours),
                "unexpected": bool(b and b.unexpected),
            }
        )
    return rows


def side_by_side(reference_png: Path, new_png: Path, out: Path) -> Path:
    """One sheet with the reference figure on the left and the new one on the right."""
    left, right = plt.imread(reference_png), plt.imread(new_png)
    height = max(left.shape[0], right.shape[0]) / DPI
    width = (left.shape[1] + right.shape[1]) / DPI
    fig, axes = plt.subplots(1, 2, figsize=(width, height + 0.4), layout="constrained")
    for ax, image, title in zip(axes, (left, right), ("reference", "new")):
        ax.imshow(image)
        ax.set_title(title)
        ax.axis("off")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out


def compare(reference_dir: Path, new_dir: Path, out_dir: Path) -> str:
    """Write the comparison under ``out_dir`` and return it as markdown."""
    lines = [f"# Comparison: reference `{reference_dir}` vs new `{new_dir}`", ""]
    slugs = sorted(p.parent.name for p in new_dir.glob("*/claims.json"))
    if not slugs:
        raise ValueError(f"new_dir {new_dir} holds no <slug>/claims.json to compare")
    for slug in slugs:
        new = load_record(new_dir / slug / "claims.json")
        ref_path = reference_dir / slug / "claims.json"
        lines += [f"## `{slug}`", ""]
        if not ref_path.exists():
            lines += ["No reference run for this notebook.", ""]
            continue
        try:
            reference = load_record(ref_path)
        except SchemaError as exc:
            lines += [f"The reference run cannot be compared: {exc}", ""]
            continue
        lines += [
            f"reference: profile {reference.profile}, commit `{reference.git_commit}` · "
            f"new: profile {new.profile}, commit `{new.git_commit}`",
            "",
            "| claim | verdict (reference → new) | expected | evidence (reference → new) | |",
            "|---|---|---|---|---|",
        ]
        for row in claim_changes(reference, new):
            flags = ["**verdict changed**"] if row["verdict_changed"] else []
            flags += ["evidence changed"] if row["value_changed"] and not row["verdict_changed"] else []
            flags += ["**differs from expectation**"] if row["unexpected"] else []
            lines.append(
                f"| {row['id']} | {row['reference_verdict']} → {row['new_verdict']} | {row['expected']} "
                f"| {row['reference_ours']} → {row['new_ours']} | {', '.join(flags)} |"
            )
        lines.append("")
        for new_png in sorted((new_dir / slug).glob("*.png")):
            ref_png = reference_dir / slug / new_png.name
            if ref_png.exists():
                sheet = side_by_side(ref_png, new_png, out_dir / slug / new_png.name)
                lines.append(f"![{new_png.stem}]({sheet.relative_to(out_dir).as_posix()})")
        lines.append("")
    text = "\n".join(lines)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "COMPARE.md").write_text(text)
    return text
