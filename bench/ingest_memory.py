"""Peak memory of ingesting one large non-image, against reading it whole, measured in the same run.

    python bench/ingest_memory.py [--mib 600 400] [--out bench/out]

Each sparse file of --mib MiB (made with truncate: no disk used, zeros when read) is offered alone
to a real `ingest` into a fresh SQLite catalogue. Over ingest's 512 MiB limit it is rejected as
too-large; under it, Pillow's format checks read its header and it is rejected as not-an-image;
either way its sha256 is read in 1 MiB chunks. Before, it was read whole (1.6 GB RSS for a 1.5 GB
file). The baselines are the ways to hash it: the old whole read (`Path.read_bytes` + sha256) and a
plain 1 MiB chunked sha256, and an interpreter that only imports ingest. Every row runs in a fresh
spawned interpreter, so its peak RSS (VmHWM, Linux) is its own. Not a test: it prints a table.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path


def _peak_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)[1]) / 1024


def imports_only(_: str) -> tuple[float, float, str]:
    import stylevault.governance.ingest.run  # noqa: F401

    return 0.0, _peak_mib(), "-"


def read_whole(path: str) -> tuple[float, float, str]:
    started = time.perf_counter()
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return time.perf_counter() - started, _peak_mib(), digest[:12]


def chunked(path: str) -> tuple[float, float, str]:
    started = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return time.perf_counter() - started, _peak_mib(), digest.hexdigest()[:12]


def stylevault_ingest(path: str) -> tuple[float, float, str]:
    import sqlalchemy as sa

    from stylevault.governance.catalogue import actors
    from stylevault.governance.catalogue.db import Catalogue
    from stylevault.governance.catalogue.models import Rejection
    from stylevault.governance.ingest.run import ingest

    with tempfile.TemporaryDirectory() as work:
        catalogue = Catalogue.open(f"sqlite:///{work}/bench.db")
        catalogue.upgrade()
        with catalogue.write() as session:
            actors.add(session, None, "admin", ["admin"])
            actors.add(session, "admin", "sam", ["steward"])
        started = time.perf_counter()
        summary = ingest(catalogue, "sam", Path(path).parent, progress=False)
        seconds = time.perf_counter() - started
        with catalogue.read() as session:
            rejection = session.scalars(sa.select(Rejection)).one()
        catalogue.dispose()
    assert summary.rejected == 1, summary.rejections
    return seconds, _peak_mib(), f"{rejection.sha256[:12]} ({rejection.reason})"


def in_child(function, path: str):
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as child:
        return child.submit(function, path).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--mib", type=int, nargs="+", default=[600, 400])
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    rows = [
        ("read whole + sha256 (ingest before)", read_whole),
        ("sha256 in 1 MiB chunks", chunked),
        ("stylevault ingest, workers=1", stylevault_ingest),
    ]
    _, imported, _ = in_child(imports_only, "")
    print(f"python + import stylevault.governance.ingest.run: {imported:.0f} MiB peak RSS\n")
    header = ("file", "measurement", "seconds", "peak RSS MiB", "vs whole read", "sha256")
    print("| {:>8} | {:<37} | {:>7} | {:>12} | {:>13} | {} |".format(*header))
    print(f"|{'-' * 10}|{'-' * 39}|{'-' * 9}|{'-' * 14}|{'-' * 15}|--------|")
    for mib in args.mib:
        folder = args.out / "ingest_memory" / f"{mib}"
        folder.mkdir(parents=True, exist_ok=True)
        big = folder / "large.bin"
        with open(big, "wb") as handle:
            handle.truncate(mib << 20)
        results = {name: in_child(function, str(big)) for name, function in rows}
        whole = results["read whole + sha256 (ingest before)"][1]
        for name, (seconds, peak, digest) in results.items():
            cells = (f"{mib} MiB", name, f"{seconds:.2f}", f"{peak:.0f}", f"{peak / whole:.2f}", digest)
            print("| {:>8} | {:<37} | {:>7} | {:>12} | {:>13} | {} |".format(*cells))
        big.unlink()


if __name__ == "__main__":
    main()
