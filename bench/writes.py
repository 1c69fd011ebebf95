"""The write paths under wrk: upload, create link, delete; their tail against their median.

A write that queues behind others shows as a p99 far above its p50, whatever the req/s.
Upload first (its images are then deleted), each at the benchmark's connection count.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from bench.common import Load, Options, Report, Target, wrk
from bench.fixtures import Deployment, encode, photo_like

TAIL = 10.0  # p99 <= 10x p50
BOUNDARY = "imagify-bench-boundary"
UPLOAD_SIZE = (640, 480)

POST = """
wrk.method = "POST"
local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "{content_type}"
"""

# Each id once; the thread stops while the requests still in flight have ids left.
DELETE = """
local ids, i = {{}}, 0
for line in io.lines("{ids}") do ids[#ids + 1] = line end
request = function()
  i = i + 1
  return wrk.format("DELETE", "/api/v1/images/" .. ids[math.min(i, #ids)])
end
response = function(status)
  if i >= #ids - {reserve} then wrk.thread:stop() end
end
"""


def run(report: Report, options: Options, workdir: Path, dep: Deployment, base: str) -> dict[str, Load]:
    scripts = workdir / f"{dep.name}-writes"
    scripts.mkdir(exist_ok=True)
    image = dep.image_ids[0]
    loads: dict[str, Load] = {}

    jpeg = encode(photo_like(UPLOAD_SIZE, seed=3), "JPEG")
    form = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="w.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n"
    ).encode() + jpeg + f"\r\n--{BOUNDARY}--\r\n".encode()
    upload = post_script(scripts / "upload.lua", form, f"multipart/form-data; boundary={BOUNDARY}")
    # One upload first: the decode pool's workers start with the server, in the background,
    # and the first uploads wait for them (seconds on a loaded machine): a start, not a tail.
    headers = {**dep.headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    created = httpx.post(f"{base}/api/v1/images", content=form, headers=headers, timeout=120)
    assert created.status_code == 201, created.text
    loads["upload"] = wrk(f"{base}/api/v1/images", options, dep.headers, scripts=(upload, upload))
    _row(report, dep.name, "POST /api/v1/images (upload)", loads["upload"], f"{len(jpeg) / 1024:.0f} KiB JPEG")

    link = post_script(scripts / "link.lua", b'{"seconds": 300}', "application/json")
    loads["link"] = wrk(f"{base}/api/v1/images/{image}/expiring-links", options, dep.headers, scripts=(link, link))
    _row(report, dep.name, "POST /api/v1/images/{id}/expiring-links", loads["link"], "one image, 300 s links")

    uploaded = sorted(set(_ids_owned(dep)) - set(dep.image_ids))
    half = len(uploaded) // 3  # a third to warm up, the rest measured
    warm = _delete_script(scripts / "delete-warm.lua", uploaded[:half], options.connections)
    measured = _delete_script(scripts / "delete.lua", uploaded[half:], options.connections)
    loads["delete"] = wrk(f"{base}/api/v1/images", options, dep.headers, scripts=(warm, measured))
    _row(report, dep.name, "DELETE /api/v1/images/{id}", loads["delete"],
         f"{len(uploaded) - half} images uploaded above")  # fmt: skip
    return loads


def _row(report: Report, section: str, what: str, load: Load, detail: str) -> None:
    ratio = load.p99_ms / load.p50_ms
    report.figure(section, what, load.text(), detail)
    report.target(Target(
        f"{what}: p99 against p50 ({section})", "its own p50, same run", f"<= {TAIL:.0f}x",
        ratio, ratio <= TAIL, f"p99 {load.p99_ms:.1f} ms vs p50 {load.p50_ms:.1f} ms ({load.rps:,.0f} req/s)",
    ))  # fmt: skip


def post_script(path: Path, body: bytes, content_type: str) -> Path:
    path.with_suffix(".body").write_bytes(body)
    path.write_text(POST.format(body=path.with_suffix(".body"), content_type=content_type))
    return path


def _delete_script(path: Path, ids: list[str], connections: int) -> Path:
    path.with_suffix(".ids").write_text("\n".join(ids) + "\n")
    path.write_text(DELETE.format(ids=path.with_suffix(".ids"), reserve=connections + 1))
    return path


def _ids_owned(dep: Deployment) -> list[str]:
    from imagify.entrypoints.container import build_container, shutdown

    container = build_container(dep.settings())
    try:
        with container.uow()() as uow:
            user = uow.users.get_by_username("bench")
            return uow.images.ids_owned(user.id)
    finally:
        shutdown(container)
