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
    assert {"digits", "toy_short", "search_began_digits"} <= names


@pytest.mark.parametrize("table", TABLES, ids=[p.stem for p in TABLES])
def test_committed_table_regenerates_from_its_records(table, tmp_path, monkeypatch):
    command = MADE_BY.search(table.read_text()).group(1)
    argv = shlex.split(command)[3:]  # after `python -m lit_gen.bench`
    out = Path(argv[argv.index("--out") + 1])
    assert out == Path("benchmarks") / table.stem
    # a fresh clone's layout: rows of planned runs not yet started are named from conf/
    for folder in ("benchmarks", "conf"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    for p in (tmp_path / out).parent.glob(f"{out.name}.*"):
        if p.suffix in (".md", ".csv"):
            p.unlink()  # written anew, not left over
    monkeypatch.chdir(tmp_path)
    assert bench(argv) == 0
    for suffix in (".md", ".csv"):
        committed = table.with_suffix(suffix)
        assert (tmp_path / out).with_suffix(suffix).read_bytes() == committed.read_bytes(), \
            f"{committed.name} differs from what its records give: rerun `{command}`"
