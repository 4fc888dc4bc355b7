"""Command line of the workbook (what the Makefile calls)::

    python -m regkit.workbook list
    python -m regkit.workbook check  [SLUG ...] [-p name=value ...] [--outputs [--allow-dirty]]
    python -m regkit.workbook run    [SLUG ...] [--profile full|quick] [-p name=value ...] [--dest DIR] [--allow-dirty]
                                     [--workers N | --scheduler tcp://host:8786]
    python -m regkit.workbook stability [SLUG ...] [--blocks 3] [--profile full|quick] [--workers N | --scheduler ...]
    python -m regkit.workbook summary [SLUG ...]
    python -m regkit.workbook report
    python -m regkit.workbook compare [--new DIR]

No slug means every notebook. ``run`` exits 1 if any notebook failed, after running the rest.
Runs are Dask tasks (:mod:`regkit.workbook.tasks`): a LocalCluster of ``--workers`` processes
(default: the number of cores), or the scheduler at ``--scheduler`` / ``$REGKIT_SCHEDULER``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from regkit.workbook import runner, stability, tasks
from regkit.workbook.compare import compare
from regkit.workbook.paths import find_root, scratch_dir
from regkit.workbook.report import write_report


def _parameters(items: list[str]) -> dict:
    return dict(runner.parse_parameter(item) for item in items)


def _submit(root: Path, specs: list[tasks.RunSpec], args) -> list[runner.RunResult]:
    """Run the specs as Dask tasks, writing each run's status and printing its line as it ends."""

    def report(result: runner.RunResult) -> None:
        if args.command == "run":
            runner.write_status(root, result)
        print(runner.summary([result]).split("\n", 1)[1], flush=True)

    print(f"{len(specs)} run(s), profile {args.profile}: {' '.join(s.slug for s in specs)}", flush=True)
    return tasks.submit_runs(root, specs, workers=args.workers, scheduler=args.scheduler, on_result=report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m regkit.workbook", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="workbook checkout (default: found from cwd)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the notebooks")
    helps = {
        "check": "validate slugs and parameters",
        "run": "run notebooks",
        "stability": "rerun notebooks on held-out seed blocks; write stability.json",
    }
    for name, text in helps.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("slugs", nargs="*")
        p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
        if name == "check":
            p.add_argument("--outputs", action="store_true", help="also check that the code is committed")
        else:
            p.add_argument("--profile", default="full")
            p.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: the cores)")
            p.add_argument(
                "--scheduler", default=None, help=f"Dask scheduler address (default: ${tasks.SCHEDULER_ENV})"
            )
        if name == "run":
            p.add_argument("--dest", type=Path, default=None, help="default: outputs/ (full) or scratch/<profile>/")
        if name == "stability":
            p.add_argument("--blocks", type=int, default=3, help="held-out seed blocks (default 3)")
        p.add_argument(
            "--allow-dirty",
            action="store_true",
            help="write outputs/ although the code has uncommitted changes (the record is marked +dirty)",
        )
    p = sub.add_parser("summary", help="summarize the last run status of notebooks; exit 1 on failures")
    p.add_argument("slugs", nargs="*")
    sub.add_parser("report", help="write outputs/REPORT.md, outputs/index.html and the README table")
    p = sub.add_parser("compare", help="compare a fresh run with the committed reference")
    p.add_argument("--new", type=Path, default=None, help="default: scratch/fresh")
    args = parser.parse_args(argv)
    root = (args.root or find_root()).resolve()

    try:
        if args.command == "list":
            for slug, path in runner.notebooks(root).items():
                print(f"{slug:<30} {path.relative_to(root)}")
        elif args.command == "check":
            selected = runner.validate(root, args.slugs, _parameters(args.param))
            if args.outputs:
                runner.check_traceable(root, root / "outputs", args.allow_dirty)
            for slug in selected:
                runner.status_path(root, slug).unlink(missing_ok=True)
            print("ok: " + " ".join(selected))
        elif args.command == "run":
            params = _parameters(args.param)
            selected = runner.validate(root, args.slugs, params)
            destination = args.dest or runner.default_destination(root, args.profile)
            runner.check_traceable(root, destination, args.allow_dirty)
            specs = [tasks.RunSpec(s, args.profile, params, str(destination), args.allow_dirty) for s in selected]
            results = _submit(root, specs, args)
            print(runner.summary(results))
            return 0 if all(r.ok for r in results) else 1
        elif args.command == "stability":
            params = _parameters(args.param)
            selected = list(runner.validate(root, args.slugs, params))
            if args.profile == "full":  # the record goes into outputs/: the code must be committed
                runner.check_traceable(root, root / "outputs", args.allow_dirty)
            results = _submit(root, stability.specs(root, selected, args.blocks, args.profile, params), args)
            for path in stability.write(root, selected, args.blocks, args.profile):
                print(f"wrote {path.relative_to(root)}")
            print(runner.summary(results))
            return 0 if all(r.ok for r in results) else 1
        elif args.command == "summary":
            slugs = args.slugs or list(runner.notebooks(root))
            results = [runner.read_status(root, s) for s in slugs]
            missing = [s for s, r in zip(slugs, results) if r is None]
            print(runner.summary([r for r in results if r is not None]))
            if missing:
                print(f"no run recorded for: {' '.join(missing)}")
            return 0 if not missing and all(r.ok for r in results if r) else 1
        elif args.command == "report":
            for path in write_report(root):
                print(f"wrote {path.relative_to(root)}")
        elif args.command == "compare":
            print(compare(root / "outputs", args.new or scratch_dir(root) / "fresh", root / "outputs" / "compare"))
    except (runner.RunnerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
