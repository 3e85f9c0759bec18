"""What a `stylevault` command costs from the shell on a small catalogue, against the bare interpreter.

    python bench/cli_startup.py [--runs 5] [--postgres URL]

The script makes a small SQLite catalogue (or uses the PostgreSQL database at URL, which it
migrates) with the real CLI: `init`, a steward, `ingest` of a few generated PNGs. Then it times, end
to end as a subprocess, best of N:

- baselines: `python -c pass` and `python -c "import sqlalchemy, sqlmodel"` (the least any command
  that opens the catalogue must import);
- `stylevault --help`, `images show 1`, `images list --limit 10`, `report licences`.

It prints seconds and each command's ratio to both baselines, and the machine's load average before
and after (it is a shared machine: read the ratios). Not a test; issue 19's target is a read command
at or under 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.factories import encode, picture, write  # noqa: E402

PYTHON = sys.executable
# The installed console script where there is one (what a user runs), else the same entry point.
SCRIPT = Path(PYTHON).with_name("stylevault")
STYLEVAULT = (
    [str(SCRIPT)]
    if SCRIPT.exists()
    else [PYTHON, "-c", "import sys; from stylevault.governance.cli import main; sys.exit(main())"]
)
COMMANDS = {
    "stylevault --help": ["--help"],
    "stylevault images show 1": ["images", "show", "1"],
    "stylevault images list --limit 10": ["images", "list", "--limit", "10"],
    "stylevault report licences": ["report", "licences"],
}
BASELINES = {
    "python -c pass": [PYTHON, "-c", "pass"],
    "python -c 'import sqlalchemy, sqlmodel'": [PYTHON, "-c", "import sqlalchemy, sqlmodel"],
}


def run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed


def stock(stylevault: list[str], env: dict[str, str], folder: Path, count: int, cwd: Path | None) -> None:
    """A small catalogue made the way a user makes one: init, a steward, ingest."""
    for n in range(count):
        write(folder / f"p{n}.png", encode(picture(n)))
    for argv in (
        ["init", "--admin", "admin"],
        ["--as", "admin", "users", "add", "sam", "--role", "steward"],
        ["--as", "sam", "ingest", str(folder), "--licence", "CC-BY-4.0", "--workers", "1"],
    ):
        run([*stylevault, *argv], env, cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="Best of this many runs of each command.")
    parser.add_argument("--images", type=int, default=5, help="Images in the small catalogue.")
    parser.add_argument("--postgres", help="Use this PostgreSQL database (migrated by the script).")
    parser.add_argument(
        "--stylevault",
        help="How to run stylevault (shell words; default: this interpreter's console script), e.g. an "
        'older checkout\'s `python -c "from governance.cli import main; main()"` with --cwd.',
    )
    parser.add_argument("--cwd", type=Path, help="Run every command here (for --stylevault).")
    args = parser.parse_args()
    stylevault = shlex.split(args.stylevault) if args.stylevault else STYLEVAULT
    with tempfile.TemporaryDirectory(prefix="sv-startup-") as tmp:
        work = Path(tmp)
        url = args.postgres or f"sqlite:///{work / 'catalogue.db'}"
        env = {**os.environ, "STYLEVAULT_DB": url, "STYLEVAULT_STORE": str(work / "store")}
        env.pop("STYLEVAULT_USER", None)
        stock(stylevault, env, work / "in", args.images, args.cwd)
        load_before = os.getloadavg()
        # Interleaved: each round times every baseline and command once, so load hits all alike.
        times: dict[str, list[float]] = {name: [] for name in [*BASELINES, *COMMANDS]}
        for _ in range(args.runs):
            for name, argv in BASELINES.items():
                times[name].append(run(argv, env, args.cwd))
            for name, argv in COMMANDS.items():
                times[name].append(run([*stylevault, *argv], env, args.cwd))
        load_after = os.getloadavg()
    best = {name: min(values) for name, values in times.items()}
    bare, sqla = best["python -c pass"], best["python -c 'import sqlalchemy, sqlmodel'"]
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"{backend}, {args.images} images, best of {args.runs}; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after ({os.cpu_count()} CPUs)"
    )
    print("| command | best s | × python -c pass | × import sqlalchemy, sqlmodel |")
    print("|---|---:|---:|---:|")
    for name, seconds in best.items():
        print(f"| `{name}` | {seconds:.3f} | {seconds / bare:.1f} | {seconds / sqla:.2f} |")


if __name__ == "__main__":
    main()
