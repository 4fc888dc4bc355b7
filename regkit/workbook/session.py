"""A notebook's run: profile, device, seed, output folder, figures and claims in one object.

Every notebook's second cell is::

    run = wb.start(SLUG, PROFILES, profile=profile, seed=seed, device=device, output_dir=output_dir)

where ``profile``, ``seed``, ``device`` and ``output_dir`` come from the papermill
``parameters`` cell. ``REGKIT_PROFILE`` in the environment overrides ``profile`` (nbval runs
the quick profile this way). An empty ``output_dir`` means the git-ignored
``scratch/<profile>/<slug>/``: only the runner writes into ``outputs/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from regkit.workbook.claims import Claim, Ledger
from regkit.workbook.device import resolve_device
from regkit.workbook.figures import claims_figure, save_figure, set_theme
from regkit.workbook.paths import find_root, scratch_dir
from regkit.workbook.registry import method
from regkit.workbook.seeding import seed_everything

PROFILE_ENV = "REGKIT_PROFILE"


def resolve_profile(profile: str, profiles: dict[str, dict]) -> tuple[str, dict]:
    """The profile in force (``$REGKIT_PROFILE`` wins over ``profile``) and its settings."""
    name = os.environ.get(PROFILE_ENV) or profile
    if name not in profiles:
        raise ValueError(f"profile must be one of {sorted(profiles)}, got {name!r}")
    return name, dict(profiles[name])


@dataclass
class Session:
    """What a notebook needs to run an experiment and record it."""

    slug: str
    profile: str
    config: dict[str, Any]
    seed: int
    device: torch.device
    output_dir: Path
    ledger: Ledger
    figures: list[Path] = field(default_factory=list)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A fresh CPU generator seeded with ``seed + offset`` (one per independent draw)."""
        return torch.Generator().manual_seed(self.seed + offset)

    def savefig(self, fig, name: str) -> Path:
        """Save a figure as ``<output_dir>/<name>.png`` and show it inline."""
        path = save_figure(fig, self.output_dir / name)
        self.figures.append(path)
        return path

    @property
    def processes(self) -> int:
        """Worker processes for independent jobs (:func:`regkit.workbook.sweeps.run_jobs`): the
        run's share of the cores, ``torch.get_num_threads()`` (set from ``OMP_NUM_THREADS`` by the
        runner), on the CPU; 1 on an accelerator, whose jobs queue on the one device."""
        return torch.get_num_threads() if self.device.type == "cpu" else 1

    @property
    def seeds(self) -> list[int]:
        """``seed, seed + 1, …``: as many as the profile's ``seeds`` setting (1 if it has none)."""
        return [self.seed + k for k in range(int(self.config.get("seeds", 1)))]

    def expect(self, expectations: dict[str, tuple[str, str]]) -> None:
        """Declare the claims not expected to reproduce here: ``{id: (verdict, why)}`` (see :meth:`Ledger.expect`)."""
        self.ledger.expect(expectations)

    def record(self, id: str, statement: str, **kwargs) -> Claim:
        """Record a claim from its evidence (see :meth:`Ledger.record`)."""
        return self.ledger.record(id, statement, **kwargs)

    def finish(self) -> None:
        """Write ``claims.json`` and the claims figure, print the ledger and every verdict that differs
        from the expectation. Raises only when the contract is broken (see :meth:`Ledger.check`)."""
        self.ledger.save(self.output_dir)
        if self.ledger.claims:
            self.savefig(claims_figure(self.ledger.claims, title=f"{self.slug} ({self.profile} profile)"), "claims")
        print(f"claims and figures in {self.output_dir}")
        self.ledger.check()


def start(
    slug: str,
    profiles: dict[str, dict],
    *,
    profile: str = "full",
    seed: int = 0,
    device: str = "auto",
    output_dir: str | Path = "",
    paper: dict | None = None,
) -> Session:
    """Resolve the profile and device, seed everything, set the figure theme, open the ledger.

    The paper (title, year, arXiv id, seed pages) is read from the slug registry
    (:data:`regkit.workbook.registry.METHODS`); an unregistered ``slug`` raises ``ValueError`` unless
    ``paper`` gives it (a dict with ``title``, ``arxiv`` and ``seeds``: scratch notebooks and tests).
    """
    if paper is None:
        paper = method(slug).paper.as_dict()
    for key in ("title", "arxiv", "seeds"):
        if key not in paper:
            raise ValueError(f"paper must give {key!r}, got keys {sorted(paper)}")
    name, config = resolve_profile(profile, profiles)
    seed_everything(seed)
    resolved = resolve_device(device)
    root = find_root()
    out = Path(output_dir) if output_dir else scratch_dir(root) / name / slug
    out.mkdir(parents=True, exist_ok=True)
    set_theme()
    ledger = Ledger(slug=slug, paper=paper, profile=name, seed=int(seed), device=str(resolved), root=root)
    print(f"{slug}: profile={name} seed={seed} device={resolved} output_dir={out}")
    return Session(slug, name, config, int(seed), resolved, out, ledger)
