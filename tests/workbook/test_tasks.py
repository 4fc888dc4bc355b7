"""Notebook runs as Dask tasks: a LocalCluster, a real scheduler with workers, dead workers, stability."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _toy_notebooks import BAD, GOOD, make_notebook

from regkit.workbook import stability, tasks
from regkit.workbook.claims import load_record
from regkit.workbook.cli import main

SEEDY_BLOCKS = """
import regkit.workbook as wb
run = wb.start("seedy", {"full": {}, "quick": {}}, paper={"title": "t", "arxiv": "0000.00000", "seeds": []},
               profile=profile, seed=seed, device="cpu", output_dir=output_dir)
centre = 5.0 if (seed // 1000) % 2 == 0 else -5.0  # seed blocks 1000, 2000, ... alternate
run.record("a", "depends on the seed block", paper="p", criterion="x ≥ 0",
           evidence=wb.Evidence.mean("x", [centre - 1, centre, centre + 1], threshold=0, direction=">="))
run.record("b", "always holds", paper="p", criterion="x ≥ 0",
           evidence=wb.Evidence.exact("x", 1.0, threshold=0, direction=">="))
run.finish()
"""
KILLER = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)  # the kernel's parent: the Dask worker\n"


@pytest.fixture
def workbook(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    for name, body in {"good": GOOD, "bad": BAD, "other": GOOD, "seedy": SEEDY_BLOCKS, "killer": KILLER}.items():
        make_notebook(tmp_path / "notebooks" / f"{name}.ipynb", body)
    return tmp_path


def test_threads_are_the_workers_share_of_the_cores():
    assert tasks.threads_per_run(16, 4) == 4
    assert tasks.threads_per_run(2, 2) == 1
    assert tasks.threads_per_run(2, 3) == 1
    with pytest.raises(ValueError, match="workers_on_host"):
        tasks.threads_per_run(2, 0)
    with tasks.cluster(workers=2) as client:
        assert sorted(tasks.worker_threads(client).values()) == [max(1, os.cpu_count() // 2)] * 2


def test_a_local_cluster_has_no_more_workers_than_runs(monkeypatch):
    sizes = []

    class Started(Exception):
        pass

    def fake_cluster(workers, scheduler):
        sizes.append(workers)
        raise Started

    monkeypatch.setattr(tasks, "cluster", fake_cluster)
    for runs, workers in [(1, 4), (3, 4), (5, 4), (2, None)]:
        with pytest.raises(Started):
            tasks.submit_runs(Path("."), [tasks.RunSpec(f"nb{i}", "quick") for i in range(runs)], workers=workers)
    assert sizes == [1, 3, 4, min(2, os.cpu_count())]


def test_longest_runs_are_expected_from_the_committed_reference(tmp_path):
    root = Path(__file__).resolve().parents[2]
    record = json.loads((root / "outputs" / "elr" / "claims.json").read_text())
    assert tasks.expected_seconds(root, tasks.RunSpec("elr", "full")) == record["wall_seconds"]
    assert tasks.expected_seconds(root, tasks.RunSpec("elr", "quick")) == float("inf")  # another profile
    assert tasks.expected_seconds(tmp_path, tasks.RunSpec("elr", "full")) == float("inf")  # no record


def test_local_cluster_keeps_the_runner_semantics(workbook, capsys):
    previous = workbook / "outputs" / "bad"
    previous.mkdir(parents=True)
    (previous / "claims.json").write_text("reference")
    code = main(["--root", str(workbook), "run", "good", "bad", "other", "--workers", "2"])
    out = capsys.readouterr().out
    assert code == 1 and "2 of 3 notebook(s) succeeded" in out and "FAILED  bad" in out
    assert "dask: 2 worker(s), dashboard http" in out
    assert (workbook / "outputs" / "good" / "good.ipynb").exists()
    assert (workbook / "outputs" / "other" / "figure.png").exists()
    assert (previous / "claims.json").read_text() == "reference"  # the failure kept the previous outputs
    assert (workbook / "scratch" / "failed" / "bad" / "bad.ipynb").exists()


def test_a_dead_worker_is_that_runs_failure(workbook, capsys):
    started = time.time()
    code = main(["--root", str(workbook), "run", "killer", "good", "--profile", "quick", "--workers", "2"])
    out = capsys.readouterr().out
    assert code == 1 and time.time() - started < 120
    assert "FAILED  killer" in out and "KilledWorker" in out and "ok      good" in out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runs_go_to_an_existing_scheduler(workbook, capsys):
    dask = str(Path(sys.executable).with_name("dask"))
    address = f"tcp://127.0.0.1:{free_port()}"
    host, port = address[6:].split(":")
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", host, "--port", port, "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [dask, "worker", address, "--nthreads", "1", "--no-dashboard"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.time() + 60
        from distributed import Client

        while True:  # wait for both workers
            try:
                with Client(address, timeout="5s") as client:
                    if len(client.scheduler_info()["workers"]) == 2:
                        break
            except OSError:
                pass
            assert time.time() < deadline, "the scheduler and workers did not start"
            time.sleep(1)
        os.environ[tasks.SCHEDULER_ENV] = address
        code = main(["--root", str(workbook), "run", "good", "other", "--profile", "quick"])
        out = capsys.readouterr().out
        assert code == 0 and "dask: 2 worker(s)" in out
        assert (workbook / "scratch" / "quick" / "good" / "good.ipynb").exists()
    finally:
        os.environ.pop(tasks.SCHEDULER_ENV, None)
        for p in procs:
            p.kill()
            p.wait(timeout=30)


def test_stability_reports_a_verdict_that_changes_across_seed_blocks(workbook, capsys):
    code = main(
        ["--root", str(workbook), "stability", "seedy", "--profile", "quick", "--blocks", "2", "--workers", "2"]
    )
    assert code == 0
    path = workbook / "scratch" / "stability" / "quick" / "seedy" / "stability.json"
    record = stability.load(path)
    a, b = record["claims"]
    assert [blk["verdict"] for blk in a["blocks"]] == ["not_reproduced", "reproduced"]
    assert [blk["seed"] for blk in a["blocks"]] == [1000, 2000]
    assert a["label"] == "unstable (not reproduced 1, reproduced 1)" and a["flip"] and not a["stable"]
    assert b["label"] == "stable 2/2" and b["stable"] and not b["flip"]
    block_run = load_record(stability.block_dir(workbook, "quick", 2) / "seedy" / "claims.json")
    assert block_run.seed == 2000
    assert not (workbook / "outputs").exists()  # quick stability never writes outputs/


def test_stability_blocks_are_disjoint_from_the_reference_and_each_other():
    assert [stability.block_seed(b) for b in (1, 2, 3)] == [1000, 2000, 3000]
    with pytest.raises(ValueError, match="block 0"):
        stability.block_seed(0)
    with pytest.raises(ValueError, match="seed"):
        stability.specs(Path("."), ["x"], 2, "quick", {"seed": 3})
    assert stability.label("reproduced", ["reproduced"] * 3) == "stable 3/3"
    assert stability.label("reproduced", ["reproduced", "inconclusive", "reproduced"]) == (
        "unstable (reproduced 2, inconclusive 1)"
    )
