"""Retrieval over a million embeddings: index build, recall, query latency and memory of our path
(`index.builds.write_vectors`, `index.handle.IndexHandle`) against raw usearch and exact
numpy float32 search, measured in the same run.

    python bench/retrieval.py [--count 1000000] [--dim 768] [--queries 1000] [--out bench/out/retrieval]
                              [--keep]

The database is `count` random unit vectors (float32 from a seed, L2-normalised, stored float16 as
an index stores them). Two query sets are reported apart: "near" queries are database rows plus
Gaussian noise of norm NEAR_NOISE, renormalised (cosine about 0.89 to their source row: a query
that lies near some data), and "random" queries are independent random unit vectors, the hard case
for HNSW in high dimensions. Random data has no structure, so only the source row of a near query
is close to it: its other nine neighbours are as hard to find as a random query's. Ground truth is
exact float32 search over the float16 rows converted to float32, CHUNK rows at a time with a
running top-k; the same search, timed, is the numpy baseline. Each build and the memory of an
opened handle are measured in a fresh child process (peak and current RSS from /proc/self/status).
The handle is constructed directly on a manifest written here (no catalogue to verify against),
with the keys it reads plus the member sha256 list a real manifest carries. Not a test: it prints
tables and asserts nothing about time; it stops only if the handle and raw usearch disagree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

SEED = 20240611
K = 10
CHUNK = 100_000  # rows per step when generating data and in the exact search
NEAR_NOISE = 0.5  # norm of the noise added to a database row to make a near query
TARGET_RECALL = 0.95
TARGET_OVERHEAD = 1.2  # the handle against raw usearch on the same index
SWEEP = (128, 256, 512)  # expansion_search values tried beside the shipped one
NUMPY_SINGLES = 20  # single-query exact numpy searches timed (each reads the whole float32 matrix)
REPEAT = 3  # batch timings: best of REPEAT
VECTOR_CALLS = 10  # vectors(ids) timings: median of VECTOR_CALLS
MIB = 1 << 20
MEMORY_FIELDS = ("VmRSS", "RssAnon", "RssFile", "VmHWM")  # from /proc/self/status


# ---------------------------------------------------------------- the data


def unit_rows(rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
    rows = rng.standard_normal((count, dim), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows  # (count, dim) float32, L2-normalised


def make_vectors(path: Path, count: int, dim: int) -> np.ndarray:
    """`path`: (count, dim) float16 .npy, generated CHUNK rows at a time (each from its own seed), so
    the same arguments give the same file; returned memory-mapped."""
    matrix = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(count, dim))
    for step, start in enumerate(range(0, count, CHUNK)):
        rng = np.random.default_rng([SEED, step])
        matrix[start : start + CHUNK] = unit_rows(rng, min(CHUNK, count - start), dim)
    matrix.flush()
    del matrix
    return np.load(path, mmap_mode="r")


def make_queries(vectors: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """near (count, D), the database row each was made from (count,), random (count, D); float32,
    L2-normalised."""
    rng = np.random.default_rng([SEED + 1])
    dim = vectors.shape[1]
    sources = np.sort(rng.choice(len(vectors), size=count, replace=False))
    near = np.asarray(vectors[sources], dtype=np.float32)
    near += rng.standard_normal(near.shape, dtype=np.float32) * np.float32(NEAR_NOISE / np.sqrt(dim))
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    return near, sources, unit_rows(rng, count, dim)


def write_members(folder: Path, count: int, dim: int, expansion_search: int) -> None:
    """members.jsonl and manifest.json as `index.builds._write` lays them out; image id =
    position + 1 (catalogue ids start at 1), so ids and positions differ as they do in real use."""
    from stylevault.governance.index.builds import FORMAT, MANIFEST

    ids = range(1, count + 1)
    shas = [hashlib.sha256(f"bench-image-{image_id}".encode()).hexdigest() for image_id in ids]
    with open(folder / "members.jsonl", "w", encoding="utf-8") as handle:
        for position, (image_id, sha) in enumerate(zip(ids, shas, strict=True)):
            member = {
                "position": position,
                "image_id": image_id,
                "sha256": sha,
                "licence": "CC-BY-4.0",
                "relied_on": "CC-BY-4.0",
                "attribution": f"Photo by creator-{image_id % 5000}",
                "obligations": ["attribution"],
            }
            handle.write(json.dumps(member, sort_keys=True) + "\n")
    manifest = {
        "format": FORMAT,
        "index_id": "bench-retrieval",
        "encoder": {"id": "bench-random", "dim": dim},
        "search": {"kind": "hnsw", "metric": "cos", "dtype": "f16", "expansion_search": expansion_search},
        "count": count,
        "dim": dim,
        "member_ids": list(ids),
        "member_sha256": shas,
    }
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    (folder / MANIFEST).write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- exact search


def _top_unsorted(scores: np.ndarray, k: int) -> np.ndarray:
    if scores.shape[1] <= k:
        return np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    return np.argpartition(scores, -k, axis=1)[:, -k:]


def exact_top_k(matrix: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """queries (B, D) float32 against rows (N, D) of any float dtype, converted to float32 CHUNK rows at
    a time -> positions (B, k) int64 and cosine (B, k) float32, most similar first."""
    positions = np.empty((len(queries), 0), dtype=np.int64)
    scores = np.empty((len(queries), 0), dtype=np.float32)
    for start in range(0, len(matrix), CHUNK):
        rows = np.asarray(matrix[start : start + CHUNK], dtype=np.float32)  # (C, D)
        chunk_scores = queries @ rows.T  # (B, C)
        top = _top_unsorted(chunk_scores, k)
        positions = np.concatenate([positions, top + start], axis=1)
        scores = np.concatenate([scores, np.take_along_axis(chunk_scores, top, axis=1)], axis=1)
        keep = _top_unsorted(scores, k)
        positions, scores = np.take_along_axis(positions, keep, 1), np.take_along_axis(scores, keep, 1)
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(positions, order, 1), np.take_along_axis(scores, order, 1)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top-k among the k found: found, truth (B, k) positions."""
    return float((found[:, :, None] == truth[:, None, :]).any(axis=2).mean())


# ---------------------------------------------------------------- child processes


def memory() -> dict[str, float]:
    """This process's current and peak RSS, and the current RSS split into private (anonymous) memory
    and mapped file pages, in MiB (Linux). VmHWM, not ru_maxrss: that survives exec, so a spawned
    child would report its parent's peak."""
    status = Path("/proc/self/status").read_text()
    return {
        name: int(re.search(rf"^{name}:\s+(\d+) kB", status, re.MULTILINE)[1]) / 1024
        for name in MEMORY_FIELDS
    }


def in_child(function, *args):
    """Run one measurement in a fresh interpreter, so its memory is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as child:
        return child.submit(function, *args).result()


def build_ours(data: str, folder: str) -> tuple[float, dict, dict]:
    """Seconds of `write_vectors`, memory with the vectors loaded, memory at the end."""
    from stylevault.governance.index.builds import write_vectors

    vectors = np.load(data)  # (N, D) float16 in memory, as a build holds the embeddings
    loaded = memory()
    started = time.perf_counter()
    write_vectors(Path(folder), vectors)
    return time.perf_counter() - started, loaded, memory()


def build_raw(data: str, path: str, hnsw: dict) -> tuple[float, dict, dict]:
    """The same with raw usearch: Index + add + save, no governance import."""
    from usearch.index import Index

    vectors = np.load(data)
    loaded = memory()
    started = time.perf_counter()
    index = Index(ndim=vectors.shape[1], metric="cos", dtype="f16", **hnsw)
    index.add(np.arange(len(vectors), dtype=np.uint64), vectors)
    index.save(path)
    return time.perf_counter() - started, loaded, memory()


def open_handle(folder: str, queries: np.ndarray) -> tuple[float, list[tuple[str, dict]]]:
    """Seconds to read the manifest and construct the handle, and memory after each stage of using
    it: imports, manifest, constructor, every query alone, the batch, vectors() of the batch's ids."""
    from stylevault.governance.index.builds import read_manifest
    from stylevault.governance.index.handle import IndexHandle

    stages = [("imports (numpy, usearch, governance)", memory())]
    started = time.perf_counter()
    manifest, manifest_sha256 = read_manifest(Path(folder))
    stages.append(("read_manifest", memory()))
    handle = IndexHandle(Path(folder), manifest, manifest_sha256)
    seconds = time.perf_counter() - started
    stages.append(("IndexHandle(...) constructed", memory()))
    for query in queries:
        handle.search(query[None], K)
    stages.append((f"{len(queries)} single-query searches", memory()))
    ids, _ = handle.search(queries, K)
    stages.append((f"one batch search of {len(queries)}", memory()))
    handle.vectors(ids)
    stages.append((f"vectors() of the batch's {ids.size} ids", memory()))
    return seconds, stages


# ---------------------------------------------------------------- the measurements

Table = tuple[str, list[str], list[list[str]], int]  # title, header, rows, leading text columns


def single_latencies(searches: dict, queries: np.ndarray) -> dict[str, np.ndarray]:
    """Seconds of each query searched alone as (1, D), per search; the searches take turns per query,
    in alternating order, so drift on a shared machine falls on all of them alike."""
    spent = {name: np.empty(len(queries)) for name in searches}
    names = list(searches)
    for i, query in enumerate(queries):
        for name in names if i % 2 else names[::-1]:
            started = time.perf_counter()
            searches[name](query[None])
            spent[name][i] = time.perf_counter() - started
    return spent


def best_batch(searches: dict, queries: np.ndarray) -> dict[str, float]:
    """Best of REPEAT seconds for the whole batch, per search, taking turns."""
    best = dict.fromkeys(searches, float("inf"))
    for _ in range(REPEAT):
        for name, search in searches.items():
            started = time.perf_counter()
            search(queries)
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def times(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def _keys(matches, count: int) -> np.ndarray:
    return np.asarray(matches.keys, dtype=np.int64).reshape(count, K)  # (B, k) positions


def measure_build(data: Path, folder: Path, raw_path: Path, hnsw: dict) -> Table:
    print("building with raw usearch ...", flush=True)
    raw = in_child(build_raw, str(data), str(raw_path), hnsw)
    raw_path.unlink()
    print("building with stylevault.governance.index.builds.write_vectors ...", flush=True)
    ours = in_child(build_ours, str(data), str(folder))
    rows = []
    for label, (seconds, loaded, end) in (
        ("raw usearch: Index + add + save (baseline)", raw),
        ("stylevault.governance.index.builds.write_vectors: vectors.npy + index.usearch", ours),
    ):
        rows.append([label, f"{seconds:.1f}", times(seconds / raw[0]), f"{loaded['VmRSS']:.0f}"])
        rows[-1] += [f"{end['VmHWM']:.0f}", f"{end['VmHWM'] - loaded['VmRSS']:.0f}"]
    header = ["build", "seconds", "x raw", "RSS with the vectors loaded, MiB", "peak RSS, MiB"]
    return "Build, each in a fresh process", [*header, "peak - loaded, MiB"], rows, 1


def neighbours(scores: dict, dim: int) -> Table:
    """How far apart the true neighbours are: what makes a query set easy or hard for a graph search."""
    rows = []
    for name, cosines in scores.items():
        means = cosines.mean(axis=0)  # (k,) by rank
        rows.append([name, *(f"{means[rank]:.3f}" for rank in (0, 1, K - 1)), f"{1 / np.sqrt(dim):.3f}"])
    header = ["query set", "1st neighbour", "2nd neighbour", f"{K}th neighbour", "spread of a random pair"]
    return "Exact neighbours: mean cosine by rank (a random pair: mean 0, spread 1/sqrt(D))", header, rows, 1


def measure_recall(index, query_sets: dict, truth: dict, sources: np.ndarray, shipped: int) -> Table:
    """HNSW at the shipped expansion_search and at SWEEP, and usearch's own exact search (which shows
    what float16 storage alone costs), against exact float32 search."""
    rows = []
    for name, queries in query_sets.items():
        print(f"recall, {name} queries ...", flush=True)
        for label, ef in [
            ("usearch exact, f16 brute force", None),
            *(("HNSW", ef) for ef in (shipped, *SWEEP)),
        ]:
            index.expansion_search = ef or shipped
            started = time.perf_counter()
            found = _keys(index.search(queries, K, exact=ef is None), len(queries))
            seconds = time.perf_counter() - started
            hits = f"{(found == sources[:, None]).any(axis=1).mean():.3f}" if name == "near" else "-"
            setting = "-" if ef is None else f"{ef} (shipped)" if ef == shipped else str(ef)
            rows.append([name, label, setting, f"{recall(found, truth[name]):.3f}", hits])
            rows[-1].append(f"{len(queries) / seconds:.0f}")
    index.expansion_search = shipped
    header = ["query set", "search", "expansion_search", f"recall@{K}", f"source row in top {K}", "queries/s"]
    count = len(next(iter(query_sets.values())))
    return (
        f"Recall@{K} against exact float32 search, batch of {count} (target {TARGET_RECALL})",
        header,
        rows,
        2,
    )


def _latency_cells(singles: np.ndarray | None, batch: float, count: int) -> list[str]:
    """single-query p50 and p99 in ms ("-" when not measured), batch seconds, queries/s."""
    if singles is None:
        cells = ["-", "-"]
    else:
        cells = [f"{1000 * np.median(singles):.3f}", f"{1000 * np.percentile(singles, 99):.3f}"]
    return [*cells, f"{batch:.3f}", f"{count / batch:.0f}"]


def measure_latency(
    index, handle, query_sets: dict, matrix32: np.ndarray, numpy_batch: dict, shipped: int
) -> Table:
    """Raw usearch and the handle on the same file, taking turns; exact numpy float32 beside them."""
    searches = {
        "raw usearch": lambda batch: index.search(batch, K),
        "IndexHandle.search": lambda batch: handle.search(batch, K),
    }
    rows = []
    for name, queries in query_sets.items():
        print(f"latency, {name} queries ...", flush=True)
        count = len(queries)
        raw_ids = _keys(index.search(queries, K), count) + 1  # image id = position + 1; also the warm-up
        if not np.array_equal(raw_ids, handle.search(queries, K)[0]):
            raise SystemExit(f"{name} queries: IndexHandle.search and raw usearch found different rows")
        singles = single_latencies(searches, queries)
        batches = best_batch(searches, queries)
        base_single, base_batch = np.median(singles["raw usearch"]), batches["raw usearch"]
        for label in searches:
            single_ratio = np.median(singles[label]) / base_single
            batch_ratio = batches[label] / base_batch
            within = "yes" if max(single_ratio, batch_ratio) <= TARGET_OVERHEAD else "**no**"
            rows.append([name, label, *_latency_cells(singles[label], batches[label], count)])
            rows[-1] += [
                times(single_ratio),
                times(batch_ratio),
                "-" if label == "raw usearch" else within,
            ]
        numpy_singles = None
        if name == "random":  # the exact search's time does not depend on the query
            print("latency, exact numpy float32 ...", flush=True)
            numpy_singles = single_latencies(
                {"numpy": lambda batch: exact_top_k(matrix32, batch, K)}, queries[:NUMPY_SINGLES]
            )["numpy"]
        single_ratio = "-" if numpy_singles is None else times(np.median(numpy_singles) / base_single)
        rows.append(
            [name, "exact numpy float32 (baseline)", *_latency_cells(numpy_singles, numpy_batch[name], count)]
        )
        rows[-1] += [single_ratio, times(numpy_batch[name] / base_batch), "-"]
    header = ["query set", "search", "single p50, ms", "single p99, ms", f"batch of {count}, s", "queries/s"]
    header += ["x raw, single p50", "x raw, batch", f"<= {TARGET_OVERHEAD}x raw"]
    title = (
        f"Query latency and throughput, expansion_search {shipped} (numpy single queries: the first "
        f"{min(NUMPY_SINGLES, count)} random ones; numpy batch: the ground-truth search)"
    )
    return title, header, rows, 2


def measure_vectors(handle, folder: Path, ids: np.ndarray) -> Table:
    """`IndexHandle.vectors(ids)` against plain fancy indexing of the memory-mapped float16 rows."""
    positions = ids - 1  # image id = position + 1
    mapped = np.load(folder / "vectors.npy", mmap_mode="r")  # (N, D) float16

    def fancy_index() -> np.ndarray:
        return np.asarray(mapped[positions.reshape(-1)], dtype=np.float32).reshape(*ids.shape, -1)

    if not np.array_equal(handle.vectors(ids), fancy_index()):
        raise SystemExit("IndexHandle.vectors and fancy indexing returned different rows")
    calls = {
        "fancy indexing of the mapped float16 rows, as float32 (baseline)": fancy_index,
        "IndexHandle.vectors": lambda: handle.vectors(ids),
    }
    spent = {label: [] for label in calls}
    for _ in range(VECTOR_CALLS):
        for label, call in calls.items():
            started = time.perf_counter()
            call()
            spent[label].append(time.perf_counter() - started)
    base = np.median(spent[next(iter(calls))])
    rows = [[label, f"{1000 * np.median(t):.1f}", times(np.median(t) / base)] for label, t in spent.items()]
    shape = f"({ids.shape[0]}, {ids.shape[1]}, {mapped.shape[1]})"
    title = f"IndexHandle.vectors, {ids.shape} ids -> {shape} float32, median of {VECTOR_CALLS} calls"
    return title, ["call", "ms per call", "x baseline"], rows, 1


def measure_open(folder: Path, queries: np.ndarray) -> list[Table]:
    print("memory of a process that opens the handle ...", flush=True)
    seconds, stages = in_child(open_handle, str(folder), queries)
    header = [
        "after",
        "RSS, MiB",
        "private (RssAnon), MiB",
        "mapped files (RssFile), MiB",
        "peak RSS so far, MiB",
    ]
    rows = [[label] + [f"{status[field]:.0f}" for field in MEMORY_FIELDS] for label, status in stages]
    title = f"Memory of a fresh process that opens the handle (read_manifest + constructor: {seconds:.2f} s)"
    sizes = [[path.name, f"{path.stat().st_size / MIB:.0f}"] for path in sorted(folder.iterdir())]
    return [(title, header, rows, 1), ("Files in the index folder", ["file", "MiB"], sizes, 1)]


def print_table(title: str, header: list[str], rows: list[list[str]], text: int) -> None:
    """A Markdown table: the first `text` columns left-aligned, the rest (numbers) right-aligned."""
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * text + "---:|" * (len(header) - text))
    for row in rows:
        print("| " + " | ".join(row) + " |")


# ---------------------------------------------------------------- the run


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--count", type=int, default=1_000_000, help="vectors in the index")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=1000, help="queries in each query set")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "retrieval")
    parser.add_argument("--keep", action="store_true", help="keep the vectors and the index folder")
    args = parser.parse_args()
    from usearch.index import Index

    from stylevault.governance.index.builds import HNSW, HNSW_THRESHOLD, read_manifest
    from stylevault.governance.index.handle import IndexHandle

    if args.count < HNSW_THRESHOLD:
        parser.error(f"--count: at least {HNSW_THRESHOLD} (below that an index is searched exactly)")
    if not 1 <= args.queries <= args.count:
        parser.error("--queries: between 1 and --count")
    if args.dim < 2:
        parser.error("--dim: at least 2")
    count, dim, shipped = args.count, args.dim, HNSW["expansion_search"]
    args.out.mkdir(parents=True, exist_ok=True)
    data, folder, raw_path = args.out / "data.npy", args.out / "index", args.out / "raw.usearch"
    shutil.rmtree(folder, ignore_errors=True)  # left by an earlier --keep
    folder.mkdir()
    try:
        print(f"generating {count} x {dim} unit vectors ...", flush=True)
        vectors = make_vectors(data, count, dim)  # (N, D) float16, memory-mapped
        near, sources, random_queries = make_queries(vectors, args.queries)
        query_sets = {"near": near, "random": random_queries}
        tables = [measure_build(data, folder, raw_path, HNSW)]
        write_members(folder, count, dim, shipped)

        print("exact float32 search (ground truth) ...", flush=True)
        matrix32 = np.empty((count, dim), dtype=np.float32)  # the float32 rows exact numpy search needs
        for start in range(0, count, CHUNK):
            matrix32[start : start + CHUNK] = vectors[start : start + CHUNK]
        exact_top_k(matrix32, random_queries[:1], K)  # warm-up: BLAS threads
        truth, truth_scores, numpy_batch = {}, {}, {}
        for name, queries in query_sets.items():
            started = time.perf_counter()
            truth[name], truth_scores[name] = exact_top_k(matrix32, queries, K)
            numpy_batch[name] = time.perf_counter() - started
        tables.append(neighbours(truth_scores, dim))

        index = Index.restore(str(folder / "index.usearch"), view=True)  # what the handle opens
        tables.append(measure_recall(index, query_sets, truth, sources, shipped))
        handle = IndexHandle(folder, *read_manifest(folder))
        tables.append(measure_latency(index, handle, query_sets, matrix32, numpy_batch, shipped))
        del matrix32
        tables.append(measure_vectors(handle, folder, handle.search(random_queries, K)[0]))
        del handle, index
        tables += measure_open(folder, random_queries)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
            data.unlink(missing_ok=True)
            raw_path.unlink(missing_ok=True)
    print(
        f"\nRetrieval over {count} x {dim} random unit vectors (float16), k = {K}, {args.queries} queries "
        f"per set, {os.cpu_count()} CPU cores, HNSW {HNSW}"
    )
    for table in tables:
        print_table(*table)


if __name__ == "__main__":
    main()
