"""Core benchmark on a full-size file in the published layout (28,420 rows, 7 persona + 6 model columns).

Prints each measurement beside a baseline measured in the same run:
- load from Parquet vs. DuckDB copying the same file into a table as it is (target: ratio <= 3);
- load from CSV (reported beside DuckDB's own CSV copy, for reference);
- all positions + the JS distance matrix vs. the published notebooks' way: pandas row loops
  (`iterrows` / `apply`) and `value_counts` per column (target: >= 50x faster).

Run: ``python3 bench/bench_core.py [--repeat 5]``. Uses only temporary files.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb  # the baseline only; the library reaches DuckDB through fairpp.store
import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from fairpp import analysis
from fairpp.sources.demo import build_demo
from fairpp.sources.files import read_files
from fairpp.sources.published import to_wide
from fairpp.store import Store


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def full_size_file(tmp: Path) -> tuple[Path, Path, pd.DataFrame]:
    wide = to_wide(build_demo())
    wide = wide.drop(columns=[c for c in wide.columns if c.startswith("gpt-4o-mini_role_") and not c.endswith("_answer")])
    wide.to_parquet(tmp / "fairpp_test.parquet", index=False)
    wide.to_csv(tmp / "fairpp_test.csv", index=False)
    return tmp / "fairpp_test.parquet", tmp / "fairpp_test.csv", wide


def ours_load(path: Path, db: Path) -> None:
    db.unlink(missing_ok=True)
    with Store(db) as store:
        store.load(read_files([path]))


def duckdb_copy(path: Path, db: Path, reader: str) -> None:
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}(?)", [str(path)])
    con.close()


def ours_analysis(db: Path) -> None:
    with Store(db, read_only=True) as store:
        analysis.positions(store)
        analysis.distances(store)


def notebook_analysis(wide: pd.DataFrame) -> None:
    """Positions and JS distances the way the published notebooks compute them: row loops."""
    answer_cols = [c for c in wide.columns if c.endswith("_answer")]
    dims = wide["Perspective"].apply(lambda p: int(str(p).split(".")[1]))
    positions = {}
    for col in answer_cols:
        counts = {d: [0, 0, 0] for d in range(1, 6)}
        for i, row in wide.iterrows():
            v = row[col]
            if pd.notna(v):
                counts[dims[i]][int(v)] += 1
        positions[col] = {d: c[1] / (c[0] + c[1]) if c[0] + c[1] else np.nan for d, c in counts.items()}
    dist = np.zeros((len(answer_cols), len(answer_cols)))
    for i, a in enumerate(answer_cols):
        for j, b in enumerate(answer_cols[i + 1:], start=i + 1):
            shared = wide[[a, b]].dropna()
            p = shared[a].value_counts(normalize=True).reindex([0, 1, 2], fill_value=0)
            q = shared[b].value_counts(normalize=True).reindex([0, 1, 2], fill_value=0)
            dist[i, j] = dist[j, i] = jensenshannon(p, q)
    return positions, dist


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pq, csv, wide = full_size_file(tmp)
        print(f"file: {len(wide)} rows, {sum(c.endswith('_answer') for c in wide.columns)} answer columns")
        t_pq = best(lambda: ours_load(pq, tmp / "a.duckdb"), args.repeat)
        t_pq_base = best(lambda: duckdb_copy(pq, tmp / "b.duckdb", "read_parquet"), args.repeat)
        t_csv = best(lambda: ours_load(csv, tmp / "a.duckdb"), args.repeat)
        t_csv_base = best(lambda: duckdb_copy(csv, tmp / "b.duckdb", "read_csv"), args.repeat)
        ours_load(pq, tmp / "a.duckdb")
        t_an = best(lambda: ours_analysis(tmp / "a.duckdb"), args.repeat)
        t_nb = best(lambda: notebook_analysis(wide), 1)
    print(f"load parquet : {t_pq:.3f} s   baseline DuckDB copy {t_pq_base:.3f} s   ratio {t_pq / t_pq_base:.2f}x (target <= 3)")
    print(f"load csv     : {t_csv:.3f} s   baseline DuckDB copy {t_csv_base:.3f} s   ratio {t_csv / t_csv_base:.2f}x (reference)")
    print(f"positions+JS : {t_an:.3f} s   baseline row loops   {t_nb:.3f} s   speed-up {t_nb / t_an:.0f}x (target >= 50)")


if __name__ == "__main__":
    main()
