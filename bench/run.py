"""The benchmark suite: `make bench`, or `.venv/bin/python -m bench.run [--quick] [--no-cloud]`.

Every target of issue 6 is a ratio measured side by side in this one run (so a noisy
machine moves both sides alike): renders against the decode floor and libvips, peak
memory, `imagify serve` under wrk against a bare Litestar app on the same uvicorn
settings, list latency at 100 000 images against 1 000, and --workers 2 against 1.
Prints each figure as it goes, then writes bench/results.md.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import http, listing, render, thumbor
from bench.common import BENCH, Options, Report, machine_info
from bench.fixtures import cloud_available, encode, photo_like

# Why a missed target is missed, and what would meet it (the measured note comes first).
THUMB = (
    "Warm requests are answered from memory on the event loop: no SQL, no thread hop, the bytes "
    "from the small-blob cache, sent as a pre-encoded response. What is left per request is "
    "Litestar's routing, the remembered token, one stamp read to honour 'changes apply on the "
    "next request' (two reads of a shared memory map embedded; in cloud mode a share of one Redis "
    "MGET, grouped across the requests in flight), the JSON access-log line and the Prometheus "
    "counters. Less would mean dropping the access log or answering before Litestar routes."
)
LINK = (
    "The link's image, owner and expiry are remembered (they never change); the image entry is "
    "checked against its owner's stamp, and the original comes from the small-blob cache."
)
WORKERS = (
    "wrk and both workers share the machine's 2 cores (the figures give the CPU each server "
    "used): with one worker, wrk has the other core to itself; with two, it takes its share "
    "from them, and the faster a request is the larger that share. Nothing is shared between "
    "the workers on this path (the change counters are only read). A load generator on its own "
    "machine, or more cores, is what would show the workers' own scaling."
)
REMEDIES = {
    "cold ": (
        "Both sources render from the preview their upload check kept (a 2 MP photo at 1/2 "
        "scale, a 12 MP one at 1/4: see README, Previews), where thumbor decodes the original "
        "for every new URL. On the 2 MP 400 px WebP row that saves less than elsewhere: of a "
        "single-threaded render (preview decode 2.5 ms, Lanczos 817x613 -> 533x400 5.0 ms, "
        "WebP encode 17.6 ms) the encode is 70%, and thumbor spends the same Lanczos and, at "
        "libwebp's method 4, 15.6 ms encoding. Imagify encodes at method 5 (trellis "
        "quantization), which makes this thumbnail 20% smaller than thumbor's; at method 4 "
        "(the same bytes) the row measured 1.13x to 1.17x. What would meet it: a vectorised "
        "Lanczos (Pillow-SIMD or libvips; not measured here) taking most of the 5 ms resize "
        "off both renders, which would change the Lambda package too."
    ),
    "warm same URL": (
        "Imagify answers a warm thumbnail from memory on the event loop; thumbor reads its file "
        "result storage each time. Both servers and wrk share 2 cores, so the ratio is bounded "
        "by wrk's share; on the JPEG row the larger body and the access log are the rest."
    ),
    "render 200 px from a 12 MP PNG": (
        "PNG has no reduced-scale decode, so both sides inflate every pixel; Pillow's "
        "zlib inflate + unfilter is single-threaded while libvips overlaps decode and "
        "shrink. Meeting it needs a different PNG decoder (e.g. libvips itself, or "
        "libspng) in the renderer, which would change the Lambda package too."
    ),
    "warm thumbnail GET": THUMB,
    "GET /api/v1/images": (
        "The page is remembered under the owner's stamp (an upload or delete by the owner moves it), "
        "and its JSON is encoded once per page and permission set. " + THUMB
    ),
    "GET /l/{token}": LINK,
    "imagify serve --workers 2": WORKERS,
    "cold thumbnail": (
        "The first GET also pays the render lock (a file lock), reading the preview or the "
        "original, the decode worker's round trip, writing the thumbnail with fsync, and the row insert."
    ),
    "GET /api/v1/images latency": (
        "The keyset query walks the (owner_id, created_at, id) index, so the page cost "
        "should not grow with the row count; a miss here is noise or a missing index."
    ),
    "peak memory": (
        "In the S3 path the whole encoded original is read into memory before decoding; "
        "decoding from a spooled temp file instead would bound it."
    ),
}
CLOUD = (
    "Cloud: MariaDB, Redis and S3 (moto, an emulator running inside the benchmark process) "
    "share this machine's 2 cores with the server and wrk. A warm request touches neither "
    "MariaDB nor S3, only Redis (the grouped stamp read)."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs and 10 000 rows: a smoke test")
    parser.add_argument("--no-cloud", action="store_true", help="embedded mode only")
    parser.add_argument("--only", nargs="*", choices=["render", "http", "writes", "listing", "thumbor"],
                        help="some sections only (writes: the write-path rows of http alone)")
    parser.add_argument("--output", type=Path, default=BENCH / "results.md")
    args = parser.parse_args()
    # The servers log to their own files; in this process, moto's and the seeding's
    # request lines would drown the figures.
    logging.disable(logging.INFO)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install -y wrk; `make bench` does it)")
    options = Options()
    if args.quick:
        options = Options(duration=2, warmup=1, rows_large=10_000, runs=3)
    sections = args.only or ["render", "http", "listing", "thumbor"]
    why_no_cloud = "--no-cloud was given" if args.no_cloud else cloud_available()
    report = Report()
    started = time.monotonic()
    info = machine_info()
    command = "make bench" if not sys.argv[1:] else "python -m bench.run " + " ".join(sys.argv[1:])
    print(f"Imagify benchmarks on {info['cpu']}; {command}", flush=True)
    with tempfile.TemporaryDirectory(prefix="imagify-bench-") as tmp:
        workdir = Path(tmp)
        files = {"photo2": encode(photo_like((1600, 1200), seed=3), "JPEG")}
        if "render" in sections or "http" in sections:
            print("== render", flush=True)
            files |= render.run(report, options, workdir) if "render" in sections else _jpeg12()
        if "http" in sections:
            print("== http, embedded", flush=True)
            http.run(report, options, workdir, "embedded", files)
            if why_no_cloud is None:
                print("== http, cloud (MariaDB, Redis, S3 on moto)", flush=True)
                http.run(report, options, workdir, "cloud", files)
            else:
                report.notes.append(f"Cloud mode not measured: {why_no_cloud}.")
        elif "writes" in sections:
            for mode in ("embedded", "cloud") if why_no_cloud is None else ("embedded",):
                print(f"== writes, {mode}", flush=True)
                http.run(report, options, workdir, mode, files, only_writes=True)
        if "listing" in sections:
            print("== listing", flush=True)
            listing.run(report, options, workdir)
        if "thumbor" in sections:
            print("== race with thumbor 7.8", flush=True)
            thumbor.run(report, options, workdir, files)
    elapsed = time.monotonic() - started
    text = markdown(report, info, command, options, elapsed)
    args.output.write_text(text)
    print("\n" + table(report))
    print(f"\nwrote {args.output} ({elapsed:.0f} s)")


def _jpeg12() -> dict[str, bytes]:
    from bench.fixtures import megapixel_size

    return {"jpeg12": encode(photo_like(megapixel_size(12)), "JPEG")}


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "not measured"}[met]


def _why(what: str, met: bool | None, note: str) -> str:
    if met:
        return note
    remedy = next((text for key, text in REMEDIES.items() if what.startswith(key)), "")
    cloud = CLOUD if "(cloud)" in what else ""
    return " ".join(part for part in (note + "." if note else "", cloud, remedy) if part)


def table(report: Report) -> str:
    rows = [("target", "measured", "ratio", "wanted", "verdict")]
    for t in report.targets:
        rows.append((t.what, t.measured, "-" if t.ratio is None else f"{t.ratio:.2f}x", t.target,
                     _verdict(t.met).replace("*", "")))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def markdown(report: Report, info: dict[str, str], command: str, options: Options, elapsed: float) -> str:
    out = [
        "# Imagify benchmark results",
        "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {elapsed / 60:.1f} minutes. "
        "Every ratio compares two things measured side by side in this one run, so a noisy "
        "machine moves both sides alike; absolute figures are only this machine's.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
        "## Targets (issue 6)",
        "",
        "| target | measured against | wanted | measured | ratio | verdict | why, and what would meet it |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in report.targets:
        ratio = "-" if t.ratio is None else f"{t.ratio:.2f}x"
        why = _why(t.what, t.met, t.note).replace("|", "\\|")
        out.append(f"| {t.what} | {t.against} | {t.target} | {t.measured} | {ratio} | {_verdict(t.met)} | {why} |")
    out += ["", "## All figures", "", "| section | what | figure | detail |", "| --- | --- | --- | --- |"]
    out += [f"| {f.section} | {f.name.replace('|', '/')} | {f.value} | {f.detail} |" for f in report.figures]
    out += [
        "",
        "## Method",
        "",
        f"- HTTP: `imagify serve` (uvicorn, httptools, uvloop, access log on, as shipped) started by the "
        f"benchmark on a loopback port; load from `wrk` in its own process, 1 thread, "
        f"{options.connections} connections unless stated, {options.warmup:.0f} s warm-up then "
        f"{options.duration:.0f} s measured; req/s and p50/p99 latency from `wrk --latency`. Each pair "
        f"(imagify, bare) is run alternately {http.ROUNDS} times and the best run of each is kept.",
        "- Workers: `--workers 1` and `--workers 2` on the same data, 32 connections, run alternately "
        f"{http.ROUNDS} times, best of each, beside the same pair with `IMAGIFY_READ_CACHE=off` (every "
        "request on the database path). The CPU the server's processes used during each run is read "
        "from /proc; wrk and the machine's other services have what is left of the 2 cores.",
        f"- Cold thumbnail: upload a 12 MP JPEG, then time its first thumbnail GET; against "
        f"`render_thumbnail` and Pillow's 1/8-scale `draft` decode on the same bytes right after; median of "
        f"{2 * options.runs - 1} rounds after one warm-up round.",
        "- Write paths: wrk with a Lua script POSTs a 640x480 JPEG upload, then a 300 s link to one "
        "image, then DELETEs each image the upload run made (each id once; the run stops before "
        "they run out); p99 against p50 of the same run.",
        "- The bare floor is `bench/bare_app.py`: a Litestar app on the same uvicorn settings whose "
        "async routes return the very bytes imagify answered (the thumbnail, the 20-item JSON page, "
        "the original) from memory, pre-encoded.",
        "- The throughput figures are Imagify as shipped: read cache and small-blob cache on (the "
        "first request of each kind loads them; every later one still checks the change counters).",
        "- Data: a user on the enterprise tier with 21 photo-like 1600x1200 JPEG uploads; the link and "
        "thumbnail are of the last one. Cloud mode is MariaDB, Redis and S3 served by moto in the "
        "benchmark's own process.",
        "- Renders: `render_thumbnail` against Pillow's `draft` decode at 1/8 DCT scale, and against "
        "`pyvips.Image.thumbnail_buffer` + PNG encode, interleaved, medians. Memory: a fresh "
        "subprocess, RSS high-water (`getrusage`) just before and just after one render.",
        f"- Listing: two SQLite deployments with {options.rows_small:,} and {options.rows_large:,} image "
        "rows bulk-inserted with SQLAlchemy Core, served with `IMAGIFY_READ_CACHE=off` so every request "
        "runs the keyset query; p50 over one connection (no queueing), best of 2; "
        "SQL statements of one request counted with a `before_cursor_execute` listener.",
        "- Benchmarks are not tests: nothing here asserts a timing in `make test`. The constant "
        "statement counts are asserted in tests/integration/test_query_counts.py.",
    ]
    if report.notes:
        out += ["", "## Notes", "", *[f"- {n}" for n in report.notes]]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
