"""Every committed benchmark table regenerates byte for byte from the run records beside it,
by the command its own "Made by" line prints (what a reader on a fresh clone runs)."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from lit_gen.bench import main as bench

ROOT = Path(__file__).resolve().parents[2]
MADE_BY = re.compile(r"^Made by `(python -m lit_gen\.bench .+)`\.$", re.M)
TABLES = sorted(p for p in (ROOT / "benchmarks").glob("*.md") if MADE_BY.search(p.read_text()))


def test_the_committed_tables_are_found():
    names = {p.stem for p in TABLES}
    assert {"digits", "toy", "search_toy_short", "search_began_digits"} <= names


@pytest.mark.parametrize("table", TABLES, ids=[p.stem for p in TABLES])
def test_committed_table_regenerates_from_its_records(table, tmp_path, monkeypatch):
    command = MADE_BY.search(table.read_text()).group(1)
    argv = shlex.split(command)[3:]  # after `python -m lit_gen.bench`
    out = Path(argv[argv.index("--out") + 1])
    assert out == Path("benchmarks") / table.stem
    # a fresh clone's layout: rows of planned runs not yet started are named from conf/
    for folder in ("benchmarks", "conf"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    drawn = sorted((ROOT / out).parent.glob(f"{out.name}_scatter_*.png")) \
        if "--scatter" in argv else []
    for p in [*(tmp_path / out).parent.glob(f"{out.name}.*"),
              *(tmp_path / p.relative_to(ROOT) for p in drawn)]:
        if p.suffix in (".md", ".csv", ".png"):
            p.unlink()  # written anew, not left over
    monkeypatch.chdir(tmp_path)
    assert bench(argv) == 0
    for suffix in (".md", ".csv"):
        committed = table.with_suffix(suffix)
        assert (tmp_path / out).with_suffix(suffix).read_bytes() == committed.read_bytes(), \
            f"{committed.name} differs from what its records give: rerun `{command}`"
    for committed in drawn:  # the scatter figures the command draws from the kept points
        assert_same_figure(tmp_path / committed.relative_to(ROOT), committed, command)


def assert_same_figure(new: Path, committed: Path, command: str) -> None:
    """Pixel for pixel under the matplotlib version that drew the committed file (its PNG
    'Software' tag); under another version antialiasing may move: 99.5 % of the pixels."""
    import numpy as np
    from PIL import Image

    a, b = Image.open(new), Image.open(committed)
    assert a.size == b.size, f"{committed.name}: size {a.size} != {b.size}; rerun `{command}`"
    same = (np.asarray(a.convert("RGB")) == np.asarray(b.convert("RGB"))).all(-1)
    floor = 1.0 if a.info.get("Software") == b.info.get("Software") else 0.995
    assert same.mean() >= floor, (f"{committed.name}: {same.size - same.sum()} of its {same.size} "
                                  f"pixels differ from what its records give; rerun `{command}`")
