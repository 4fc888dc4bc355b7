"""Command line of the workbook (what the Makefile calls)::

    python -m regkit.workbook list
    python -m regkit.workbook check  [SLUG ...] [-p name=value ...] [--outputs [--allow-dirty]]
    python -m regkit.workbook run    [SLUG ...] [--profile full|quick] [-p name=value ...] [--dest DIR] [--allow-dirty]
    python -m regkit.workbook summary [SLUG ...]
    python -m regkit.workbook report
    python -m regkit.workbook compare [--new DIR]

No slug means every notebook. ``run`` exits 1 if any notebook failed, after running the rest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from regkit.workbook import runner
from regkit.workbook.compare import compare
from regkit.workbook.paths import find_root, scratch_dir
from regkit.workbook.report import write_report


def _parameters(items: list[str]) -> dict:
    return dict(runner.parse_parameter(item) for item in items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m regkit.workbook", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="workbook checkout (default: found from cwd)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the notebooks")
    for name in ("check", "run"):
        p = sub.add_parser(name, help=f"{name} notebooks" if name == "run" else "validate slugs and parameters")
        p.add_argument("slugs", nargs="*")
        p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
        if name == "run":
            p.add_argument("--profile", default="full")
            p.add_argument("--dest", type=Path, default=None, help="default: outputs/ (full) or scratch/<profile>/")
        else:
            p.add_argument("--outputs", action="store_true", help="also check that the code is committed")
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
            results = []
            for slug in selected:
                print(f"running {slug} (profile {args.profile}) ...", flush=True)
                result = runner.run_notebook(
                    root, slug, profile=args.profile, parameters=params, destination=destination,
                    allow_dirty=args.allow_dirty,
                )  # fmt: skip
                runner.write_status(root, result)
                results.append(result)
                print(runner.summary([result]).split("\n", 1)[1], flush=True)
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
