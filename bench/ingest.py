"""Ingest throughput and peak memory, against plain Pillow decode + sha256 measured in the same run.

    python bench/ingest.py [--count 5000] [--out bench/out] [--skip-postgres] [--profile]

The JPEGs (512x512, quality 90, shapes over noise, a third with EXIF rights and a quarter with an XMP
licence) are generated once from a seed and cached under --out. Every measurement runs in a fresh
child process, so its peak RSS is that measurement's alone; it is taken at count/5 files and at
count files, and must not grow with the folder (ingest streams its files). With workers=2 the
workers' own peak is shown apart. Timings include ingest's lazy imports (imagehash, the SPDX list),
as the CLI pays them. CPU time (the process and its workers, not the PostgreSQL server) is shown next
to wall time because it is what other jobs on a shared machine disturb least. --profile adds a
cProfile of one workers=1 ingest and direct timings of each step of `examine.examine`.
--decode-paths adds the cost of the decode paths beyond plain JPEG (white line art on a transparent
ground, SVG clip art rendered by resvg, a 5640x3172 JPEG decoded reduced with Pillow's draft, and the
largest pictures decoded whole), each as examine() per file against the same baseline, with the peak
RSS of a fresh process doing only that. Not a test: it prints tables and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import os
import pstats
import re
import resource
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

SEED = 20240611
SIZE = 512
QUALITY = 90
TARGET_RATIO = 1.5
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "stylevault_bench_ingest"
XMP = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:cc="http://creativecommons.org/ns#"
 cc:license="https://creativecommons.org/licenses/by/4.0/">
<dc:creator><rdf:Seq><rdf:li>Bench Painter {index}</rdf:li></rdf:Seq></dc:creator>
</rdf:Description></rdf:RDF></x:xmpmeta>"""


# ---------------------------------------------------------------- the files


def make_jpeg(index: int) -> bytes:
    """One 512x512 JPEG, the same bytes for the same index: shapes over a noisy gradient."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng([SEED, index])
    ramp = np.linspace(0.0, 1.0, SIZE)[None, :, None]
    low, high = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    pixels = low + (high - low) * ramp + rng.normal(0.0, 12.0, (SIZE, SIZE, 3))
    picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(picture)
    for _ in range(int(rng.integers(4, 16))):
        box = sorted(rng.integers(0, SIZE, 2)), sorted(rng.integers(0, SIZE, 2))
        xy = [box[0][0], box[1][0], box[0][1] + 1, box[1][1] + 1]
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.ellipse(xy, fill=colour)
        elif shape == 1:
            draw.rectangle(xy, fill=colour)
        else:
            draw.line(xy, fill=colour, width=int(rng.integers(2, 12)))
    options: dict = {"quality": QUALITY}
    if index % 3 == 0:
        exif = Image.Exif()
        exif[0x013B] = f"Bench Painter {index}"  # Artist
        exif[0x8298] = f"(c) Bench Painter {index}, all rights reserved"  # Copyright
        options["exif"] = exif.tobytes()
    if index % 4 == 0:
        options["xmp"] = XMP.format(index=index).encode()
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def _write_jpeg(target: Path, index: int) -> None:
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(make_jpeg(index))
    partial.replace(target)


def jpeg_folder(out: Path, count: int) -> Path:
    """`out/jpegs-<count>/` with images 0..count-1, hard-linked from a shared pool generated once."""
    pool = out / f"jpegs-seed{SEED}"
    pool.mkdir(parents=True, exist_ok=True)
    paths = [pool / f"img-{index:06d}.jpg" for index in range(count)]
    missing = [(path, index) for index, path in enumerate(paths) if not path.exists()]
    if missing:
        print(f"generating {len(missing)} JPEGs into {pool} ...", flush=True)
        with ProcessPoolExecutor(max_workers=os.cpu_count()) as workers:
            for future in [workers.submit(_write_jpeg, path, index) for path, index in missing]:
                future.result()
    folder = out / f"jpegs-{count}"
    folder.mkdir(exist_ok=True)
    for path in paths:
        link = folder / path.name
        if not link.exists():
            os.link(path, link)
    extra = sorted(set(os.listdir(folder)) - {path.name for path in paths})
    if extra:
        raise SystemExit(f"{folder}: unexpected files {extra[:3]}; delete the folder and rerun")
    for path in paths:  # into the page cache, so no measurement pays the first disk read
        path.read_bytes()
    return folder


# ---------------------------------------------------------------- the measurements (child processes)


def _cpu() -> float:
    """CPU seconds (user + system) of this process and of its children that have ended."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peaks() -> tuple[float, float]:
    """This process's peak RSS and its largest child's, in MiB (Linux).

    VmHWM, not RUSAGE_SELF: ru_maxrss survives exec, so a spawned child would report its parent's
    peak when that was higher."""
    status = Path("/proc/self/status").read_text()
    own = int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)[1]) / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB
    return own, children


@dataclass
class Measured:
    seconds: float  # wall clock
    cpu_seconds: float  # the measuring process and its workers; not the PostgreSQL server
    files: int
    peak_rss_mib: float  # the measuring process
    workers_peak_rss_mib: float  # its largest child (ingest workers), 0 when there were none


@dataclass
class Stopwatch:
    """Wall clock and CPU time together: CPU time is what a busy shared machine disturbs least."""

    wall: float = field(default_factory=time.perf_counter)
    cpu: float = field(default_factory=_cpu)

    def stop(self, files: int) -> Measured:
        return Measured(time.perf_counter() - self.wall, _cpu() - self.cpu, files, *_peaks())


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def baseline(folder: str) -> Measured:
    """What any ingest must do at least: read each file, sha256 its bytes, decode it with Pillow."""
    from PIL import Image

    paths = sorted(Path(folder).iterdir())
    watch = Stopwatch()
    for path in paths:
        data = path.read_bytes()
        sha256_hex(data)
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
    return watch.stop(len(paths))


def run_ingest(url: str, store: str, folder: str, workers: int, profile_to: str | None = None) -> Measured:
    from stylevault.governance.catalogue.db import Catalogue
    from stylevault.governance.ingest.run import ingest

    catalogue = Catalogue.open(url, store)
    profiler = cProfile.Profile() if profile_to else None
    watch = Stopwatch()
    if profiler:
        profiler.enable()
    summary = ingest(catalogue, "bench", folder, progress=False, workers=workers)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile_to)
    measured = watch.stop(summary.catalogued)
    catalogue.dispose()
    if summary.catalogued != summary.offered:
        raise SystemExit(f"ingest of {folder}: {summary.line()}")
    return measured


def in_child(function, *args):
    """Run one measurement in a fresh interpreter, so its peak RSS is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as child:
        return child.submit(function, *args).result()


# ---------------------------------------------------------------- catalogues


def fresh_catalogue(url: str, store: Path) -> None:
    """An empty, migrated catalogue with an admin and the steward `bench`."""
    from stylevault.governance.catalogue import actors
    from stylevault.governance.catalogue.db import Catalogue

    shutil.rmtree(store, ignore_errors=True)
    catalogue = Catalogue.open(url, store)
    catalogue.upgrade()
    with catalogue.write() as session:
        actors.add(session, None, "admin", ["admin"])
        actors.add(session, "admin", "bench", ["steward"])
    catalogue.dispose()


def _pg_admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(statement)


@dataclass
class Target:
    name: str
    url: str
    store: Path

    def create(self) -> None:
        if self.url.startswith("sqlite"):
            for suffix in ("", "-wal", "-shm"):
                Path(self.url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        else:
            _pg_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
            _pg_admin(f"CREATE DATABASE {PG_DATABASE}")
        fresh_catalogue(self.url, self.store)

    def drop(self) -> None:
        shutil.rmtree(self.store, ignore_errors=True)
        if self.url.startswith("sqlite"):
            for suffix in ("", "-wal", "-shm"):
                Path(self.url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        else:
            _pg_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")


def targets(work: Path, skip_postgres: bool) -> list[Target]:
    found = [Target("SQLite", f"sqlite:///{work / 'ingest.db'}", work / "ingest.store")]
    if not skip_postgres:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DATABASE}"
        found.append(Target("PostgreSQL", url, work / "ingest-pg.store"))
    return found


# ---------------------------------------------------------------- the report


def _row(files: int, what: str, measured: Measured, base: Measured) -> str:
    ratio = measured.seconds / base.seconds
    verdict = "-" if measured is base else "yes" if ratio <= TARGET_RATIO else "no"
    workers = f"{measured.workers_peak_rss_mib:.0f}" if measured.workers_peak_rss_mib else "-"
    return (
        f"| {files} | {what} | {measured.seconds:.2f} | {measured.files / measured.seconds:.0f} "
        f"| {ratio:.2f}x | {verdict} | {measured.cpu_seconds:.2f} "
        f"| {measured.cpu_seconds / base.cpu_seconds:.2f}x | {measured.peak_rss_mib:.0f} | {workers} |"
    )


def measure(out: Path, counts: list[int], skip_postgres: bool) -> list[str]:
    work = out / "ingest-run"
    work.mkdir(parents=True, exist_ok=True)
    lines = [
        f"| files | measurement | wall s | images/s | x baseline | <= {TARGET_RATIO}x | CPU s | "
        "x baseline CPU | peak RSS MiB | workers' peak RSS MiB |",
        "|---:|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for count in counts:
        folder = jpeg_folder(out, count)
        print(f"{count} files: baseline ...", flush=True)
        base = in_child(baseline, str(folder))
        lines.append(_row(count, "baseline", base, base))
        for target in targets(work, skip_postgres):
            for workers in (1, 2):
                print(f"{count} files: ingest into {target.name}, workers={workers} ...", flush=True)
                target.create()
                try:
                    measured = in_child(run_ingest, target.url, str(target.store), str(folder), workers)
                finally:
                    target.drop()
                lines.append(_row(count, f"ingest {target.name}, workers={workers}", measured, base))
    return lines


# ---------------------------------------------------------------- the profile

# (label, file suffix, function name): cumulative time of these calls inside one workers=1 ingest.
PROFILED = [
    ("read the file", "~", "<method 'read' of '_io.BufferedReader' objects>"),
    ("sha256 of the bytes", "~", "<built-in method _hashlib.openssl_sha256>"),
    ("imaging.decode (open + load + orientation + RGB)", "governance/imaging.py", "decode"),
    ("  of which JPEG decode (ImageFile.load)", "PIL/ImageFile.py", "load"),
    ("imaging.thumbnail (reduce + resize)", "governance/imaging.py", "thumbnail"),
    ("imaging.phash (of the thumbnail)", "governance/imaging.py", "phash"),
    ("imaging.jpeg (thumbnail encode)", "governance/imaging.py", "jpeg"),
    ("store.put_thumbnail (write + rename)", "governance/store.py", "put_thumbnail"),
    ("Path.exists (thumbnail already stored?)", "pathlib.py", "exists"),
    ("rights.read_rights (EXIF, XMP, IPTC)", "governance/rights.py", "read_rights"),
    ("offers_from_folder (walk, resolve)", "governance/offers.py", "walk"),
    ("BatchWriter.write (all SQL of a batch)", "governance/batches.py", "write"),
    ("  _images", "governance/batches.py", "_images"),
    ("  _sources (incl. _source_values)", "governance/batches.py", "_sources"),
    ("  _source_values (licence statement, paths)", "governance/batches.py", "_source_values"),
    ("  _licences (derive + insert)", "governance/batches.py", "_licences"),
    ("  licences.normalise (uncached calls)", "governance/licences.py", "normalise"),
    ("  audit.record (hash chain + insert)", "governance/audit.py", "record"),
    ("  session commit", "sqlalchemy/orm/session.py", "commit"),
    ("_finish (final counts + audit event)", "governance/ingest.py", "_finish"),
]


def stage_times(folder: str, store_root: str) -> tuple[dict[str, float], float]:
    """Milliseconds per file of each step of `examine.examine`, timed directly (no profiler), and the
    seconds of the first phash, which imports imagehash and scipy once per process."""
    from stylevault.governance.catalogue import store
    from stylevault.governance.pictures import imaging, rights

    spent: dict[str, float] = {}

    def timed(name: str, function, *args):
        started = time.perf_counter()
        result = function(*args)
        spent[name] = spent.get(name, 0.0) + time.perf_counter() - started
        return result

    paths = sorted(Path(folder).iterdir())
    started = time.perf_counter()
    imaging.phash(imaging.thumbnail(imaging.decode(paths[0].read_bytes()).rgb))
    once = time.perf_counter() - started
    for path in paths:
        data = timed("read the file", path.read_bytes)
        sha256 = timed("sha256", sha256_hex, data)
        decoded = timed("imaging.decode", imaging.decode, data)
        timed("rights.read_rights", rights.read_rights, decoded.original)
        thumb = timed("imaging.thumbnail", imaging.thumbnail, decoded.rgb)
        timed("imaging.phash", imaging.phash, thumb)
        jpeg = timed("imaging.jpeg", imaging.jpeg, thumb)
        timed("store.put_thumbnail", store.put_thumbnail, Path(store_root), sha256, jpeg)
    return {name: 1000 * seconds / len(paths) for name, seconds in spent.items()}, once


def profile(out: Path, count: int) -> list[str]:
    """cProfile one workers=1 SQLite ingest and say where its time goes."""
    folder = jpeg_folder(out, count)
    work = out / "ingest-run"
    work.mkdir(parents=True, exist_ok=True)
    target = targets(work, skip_postgres=True)[0]
    stats_file = out / f"ingest-profile-{count}.pstats"
    print(f"profiling a workers=1 ingest of {count} files ...", flush=True)
    target.create()
    try:
        measured = in_child(run_ingest, target.url, str(target.store), str(folder), 1, str(stats_file))
    finally:
        target.drop()
    stats = pstats.Stats(str(stats_file))
    total = measured.seconds
    lines = [
        f"Profile of one workers=1 SQLite ingest of {count} files: {total:.2f} s under cProfile "
        f"(profiling slows Python-heavy code more than C). Stats: {stats_file}",
        "",
        "| part | cumulative s | share | ms per file |",
        "|---|---:|---:|---:|",
    ]
    for label, suffix, name in PROFILED:
        cumulative = sum(
            entry[3]
            for (filename, _line, function), entry in stats.stats.items()
            if function == name and filename.endswith(suffix)
        )
        lines.append(
            f"| {label} | {cumulative:.2f} | {cumulative / total:.0%} | {1000 * cumulative / count:.2f} |"
        )
    stages_store = work / "stages.store"
    shutil.rmtree(stages_store, ignore_errors=True)
    try:
        stages, once = in_child(stage_times, str(folder), str(stages_store))
    finally:
        shutil.rmtree(stages_store, ignore_errors=True)
    lines += [
        "",
        f"The steps of examine(), timed without the profiler on the same {count} files "
        f"(plus, once per process, {once:.2f} s for the first phash, which imports imagehash and scipy):",
        "",
        "| step | ms per file |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {ms:.2f} |" for name, ms in stages.items()]
    lines.append(f"| **sum** | **{sum(stages.values()):.2f}** |")
    buffer = io.StringIO()
    stats.stream = buffer
    stats.sort_stats("tottime").print_stats(25)
    lines += ["", "Top 25 by own time:", "```", buffer.getvalue().strip(), "```"]
    return lines


# ---------------------------------------------------------------- the decode paths

LARGE_JPEG = (5640, 3172)  # the wallpaper that made ingest peak at 254 MB


def _icon(index: int) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    offset = index % 97
    draw.ellipse((20 + offset, 20, 180 + offset // 2, 200), outline=(255, 255, 255, 255), width=10)
    draw.line((10, 240 - offset, 246, 10 + offset), fill=(255, 255, 255, 255), width=8)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _svg(index: int) -> bytes:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 100 100">'
        f'<circle cx="{30 + index % 40}" cy="50" r="25" fill="#c0302a"/>'
        f'<path d="M10 80 Q 50 {index % 60} 90 80" stroke="#224" stroke-width="4" fill="none"/>'
        f'<image href="https://example.com/{index}.png" width="10" height="10"/></svg>'
    ).encode()


def _large_jpeg(index: int) -> bytes:
    import numpy as np
    from PIL import Image

    width, height = LARGE_JPEG
    rng = np.random.default_rng([SEED, index])
    small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    picture = Image.fromarray(small, "RGB").resize(LARGE_JPEG, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=QUALITY)
    return buffer.getvalue()


def _whole_png(mode: str) -> bytes:
    """A PNG just under imaging.WHOLE_PIXELS, the largest a worker decodes whole."""
    from PIL import Image

    from stylevault.governance.pictures import imaging

    side = int(imaging.WHOLE_PIXELS**0.5) - 8
    buffer = io.BytesIO()
    Image.new(mode, (side, side), 255).save(buffer, "PNG")
    return buffer.getvalue()


def kind_folder(out: Path, name: str, count: int, make) -> Path:
    folder = out / f"decode-{name}-{count}"
    if not folder.exists() or len(os.listdir(folder)) != count:
        shutil.rmtree(folder, ignore_errors=True)
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        suffix = {"svg": ".svg", "jpeg-large": ".jpg"}.get(name, ".png")
        for index in range(count):
            (partial / f"{index:05d}{suffix}").write_bytes(make(index))
        partial.rename(folder)
    return folder


def examine_folder(folder: str, store_root: str) -> Measured:
    """examine() of every file, as an ingest worker runs it, in this process alone."""
    from stylevault.governance.ingest.examine import Examined, examine

    paths = sorted(Path(folder).iterdir())
    examine(str(paths[0]), Path(store_root))  # imports (imagehash, scipy, resvg) paid once, not timed
    shutil.rmtree(store_root, ignore_errors=True)
    watch = Stopwatch()
    for path in paths:
        result = examine(str(path), Path(store_root))
        if not isinstance(result, Examined):
            raise SystemExit(f"{path}: {result.reason}: {result.detail}")
    return watch.stop(len(paths))


def full_decode(folder: str) -> Measured:
    """The old path for comparison: every pixel of the file decoded, made RGB, then thumbnailed."""
    from PIL import Image

    from stylevault.governance.pictures import imaging

    paths = sorted(Path(folder).iterdir())
    watch = Stopwatch()
    for path in paths:
        data = path.read_bytes()
        sha256_hex(data)
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
            imaging.phash(imaging.thumbnail(picture.convert("RGB")))
    return watch.stop(len(paths))


def idle() -> Measured:
    """A fresh interpreter that imports examine and decodes one small picture: the floor of a worker."""
    from stylevault.governance.ingest.examine import examine  # noqa: F401
    from stylevault.governance.pictures import imaging

    watch = Stopwatch()
    imaging.phash(imaging.thumbnail(imaging.decode(_icon(0)).rgb))
    return watch.stop(1)


def decode_paths(out: Path, count: int) -> list[str]:
    jpegs = jpeg_folder(out, count)
    store_root = out / "decode-store"
    print(f"decode paths: baseline and examine() of {count} files of each kind ...", flush=True)
    base = in_child(baseline, str(jpegs))
    rows = [("plain Pillow decode + sha256, 512x512 JPEG (baseline)", base)]
    rows.append(("a worker's floor: imports + one small picture", in_child(idle)))
    rows.append(("examine(), 512x512 JPEG", in_child(examine_folder, str(jpegs), str(store_root))))
    kinds = [
        ("transparent", count, _icon, "examine(), 256 px white line art on a transparent ground"),
        ("svg", count, _svg, "examine(), SVG clip art rendered by resvg (one external href each)"),
        ("jpeg-large", 5, _large_jpeg, f"examine(), {LARGE_JPEG[0]}x{LARGE_JPEG[1]} JPEG (draft: reduced)"),
        ("whole-rgba", 1, lambda _: _whole_png("RGBA"), "examine(), RGBA PNG just under WHOLE_PIXELS"),
        ("whole-1bit", 1, lambda _: _whole_png("1"), "examine(), 1-bit PNG just under WHOLE_PIXELS"),
    ]
    for name, files, make, label in kinds:
        folder = kind_folder(out, name, files, make)
        rows.append((label, in_child(examine_folder, str(folder), str(store_root))))
        if name == "jpeg-large":
            rows.append(
                (
                    f"full decode + RGB + thumbnail, {LARGE_JPEG[0]}x{LARGE_JPEG[1]} JPEG (old path)",
                    in_child(full_decode, str(folder)),
                )
            )
    shutil.rmtree(store_root, ignore_errors=True)
    per_file = base.seconds / base.files
    lines = [
        "| path | files | ms per file | x baseline per file | CPU ms per file | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, measured in rows:
        ms = 1000 * measured.seconds / measured.files
        lines.append(
            f"| {label} | {measured.files} | {ms:.2f} | {measured.seconds / measured.files / per_file:.2f}x "
            f"| {1000 * measured.cpu_seconds / measured.files:.2f} | {measured.peak_rss_mib:.0f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--count", type=int, default=5000, help="files in the large run (the small is 1/5)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--profile", action="store_true", help="also cProfile a workers=1 ingest (small run)")
    parser.add_argument("--decode-paths", action="store_true", help="also the cost of each decode path")
    parser.add_argument("--only-decode-paths", action="store_true", help="the decode paths alone")
    args = parser.parse_args()
    if args.count < 5:
        parser.error("--count: at least 5")
    counts = [args.count // 5, args.count]
    if args.only_decode_paths:
        print("\n".join(decode_paths(args.out, counts[0])))
        return
    lines = measure(args.out, counts, args.skip_postgres)
    print(f"\nIngest of {'/'.join(map(str, counts))} 512x512 JPEGs on {os.cpu_count()} CPU cores\n")
    print("\n".join(lines))
    if args.profile:
        print()
        print("\n".join(profile(args.out, counts[0])))
    if args.decode_paths:
        print()
        print("\n".join(decode_paths(args.out, counts[0])))


if __name__ == "__main__":
    main()
