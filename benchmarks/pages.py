"""Pages benchmark: page weight and first-view time of each role's landing page.

    python -m benchmarks.pages --equipment 50000 --equipment 1000000 [--store postgis] [--check]

For each store (the embedded one of ``python -m benchmarks.build_layers`` under var/bench/,
made and built when missing; ``--store postgis``: the 1M database of
``python -m benchmarks.serve``) ``riskmap serve`` runs in a subprocess and one user per
role is added (a province regulator, a city regulator, the busiest grid officer, the
administrator of the park with the most equipment). Debian's chromium (Playwright, no
browser download) then opens each role's pages in a fresh browser context signed in with
the role's session cookie (sign-in happens outside the browser, so nothing is cached):
``/map``, ``/regions/{adcode}``, ``/grid``, ``/parks/{id}``, at 1280×800; the province
regulator's ``/map`` comes first (the server just started) and once more at the end
(the server warm: its store reads and tile cache), both in fresh contexts. Recorded per
page: the HTML's size; every request to our origin until the network is idle (DevTools
protocol: bytes received, headers included, and decoded body bytes, by type: document,
script, stylesheet, tiles ``.mvt``, JSON, other); requests elsewhere (the optional
basemap) apart; the time to DOMContentLoaded and to the last response before the network
went idle. "cold" is the first view (empty browser cache), "warm" the same page loaded
again in the same context. Results go to var/bench/pages-<store>-<n>.json and a table.
``--check`` exits 1 when /map's HTML is 200 kB or more, or its first view 2 MB or more,
for any role (kB = 1000 bytes, MB = 10⁶ bytes, counted on the wire, headers included);
other pages over 2 MB are printed as notes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

if not __package__:  # run as a file: the repository, not benchmarks/, first on sys.path
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks.ingest import BENCH

HTML_LIMIT = 200_000       # /map's HTML, bytes
FIRST_VIEW_LIMIT = 2_000_000  # everything our server sends for a first view, bytes
VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
KINDS = ("document", "script", "stylesheet", "tiles", "json", "other")
PROVINCE, CITY = "410000", "410100"  # the demo's province (河南省) and 郑州市


def _venv_on_path() -> None:
    """``riskmap`` (the venv's console script) for the helpers that start it."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def embedded_store(n: int) -> str:
    from benchmarks.build_layers import store_for

    return store_for("embedded", n)  # the demo of n, ingested once


def busiest_park(url: str) -> str:
    from service.store import open_store

    with open_store(url) as store:
        parks = store.read_layer("parks", columns=["park_id", "equipment"])
    parks = parks.sort_values(["equipment", "park_id"], ascending=[False, True])
    return str(parks["park_id"].iloc[0])


def session_cookie(base: str, token: str) -> str:
    """Sign in as the login form does (its nonce cookie and CSRF field) and return the
    session id, without a browser: the measured browser starts with nothing cached."""
    with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as client:
        form = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]*)"', form.text)
        if csrf is None:
            raise RuntimeError("no CSRF field in /login")
        done = client.post("/login", data={"token": token, "csrf": csrf.group(1),
                                           "next": ""})
        if done.status_code != 303 or "riskmap_session" not in client.cookies:
            raise RuntimeError(f"sign-in failed: {done.status_code} {done.text[:200]}")
        return client.cookies["riskmap_session"]


def _kind(url: str, mime: str, cdp_type: str) -> str:
    path = urlsplit(url).path
    if path.endswith(".mvt"):
        return "tiles"
    if cdp_type == "Document":
        return "document"
    if cdp_type == "Script" or path.endswith(".js"):
        return "script"
    if cdp_type == "Stylesheet" or path.endswith(".css"):
        return "stylesheet"
    if "json" in mime:
        return "json"
    return "other"


def load(page, cdp, url: str, origin: str) -> dict:
    """Open ``url`` in ``page`` and count what came from ``origin`` until network idle."""
    requests: dict[str, dict] = {}

    def sent(e: dict) -> None:
        requests.setdefault(e["requestId"], {"url": e["request"]["url"],
                                             "start": e["timestamp"], "type": e.get("type", "")})

    def received(e: dict) -> None:
        r = requests.setdefault(e["requestId"], {"url": e["response"]["url"],
                                                 "start": e["timestamp"]})
        headers = {k.lower(): v for k, v in e["response"].get("headers", {}).items()}
        if headers.get("content-length", "").isdigit():
            r["length"] = int(headers["content-length"])
        r.update(status=e["response"]["status"], mime=e["response"].get("mimeType", ""),
                 type=e.get("type", r.get("type", "")),
                 cached=bool(e["response"].get("fromDiskCache")
                             or e["response"].get("fromPrefetchCache")))

    def data(e: dict) -> None:
        r = requests.get(e["requestId"])
        if r is not None:
            r["body"] = r.get("body", 0) + e["dataLength"]

    def finished(e: dict) -> None:
        r = requests.get(e["requestId"])
        if r is not None:
            r.update(wire=e["encodedDataLength"], end=e["timestamp"])

    def failed(e: dict) -> None:
        r = requests.get(e["requestId"])
        if r is not None:
            r.update(failed=e.get("errorText", "failed"), end=e["timestamp"])

    def cached(e: dict) -> None:
        r = requests.get(e["requestId"])
        if r is not None:
            r["cached"] = True

    handlers = {"Network.requestWillBeSent": sent, "Network.responseReceived": received,
                "Network.dataReceived": data, "Network.loadingFinished": finished,
                "Network.loadingFailed": failed, "Network.requestServedFromCache": cached}
    for event, handler in handlers.items():
        cdp.on(event, handler)
    try:
        page.goto(url, wait_until="networkidle", timeout=180_000)
        quiet_since, deadline = time.monotonic(), time.monotonic() + 180
        seen = len(requests)
        # chromium's "network idle" may come with tile requests still queued: wait until
        # every request has ended and nothing new started for 500 ms
        while time.monotonic() < deadline:
            page.wait_for_timeout(100)
            if len(requests) != seen or any("end" not in r for r in requests.values()
                                              if r["url"].startswith("http")):
                seen, quiet_since = len(requests), time.monotonic()
            elif time.monotonic() - quiet_since >= 0.5:
                break
        dcl = page.evaluate("() => { const n = performance.getEntriesByType('navigation')[0];"
                            " return n ? n.domContentLoadedEventEnd : null; }")
        final = page.url
    finally:
        for event, handler in handlers.items():
            cdp.remove_listener(event, handler)
    ours = [r for r in requests.values() if r["url"].startswith(origin)]
    elsewhere = [r for r in requests.values()
                 if r["url"].startswith("http") and not r["url"].startswith(origin)]
    start = min((r["start"] for r in ours), default=0.0)
    by_kind = {k: {"requests": 0, "wire": 0, "body": 0, "cached": 0} for k in KINDS}
    html = 0
    for r in ours:
        kind = _kind(r["url"], r.get("mime", ""), r.get("type", ""))
        row = by_kind[kind]
        row["requests"] += 1
        if r.get("cached") or (r.get("wire") == 0 and not r.get("failed")):
            # from the browser's disk or memory cache (the latter is reported only as
            # nothing received)
            row["cached"] += 1
            continue  # from the browser's cache: nothing sent
        row["wire"] += r.get("wire", 0)
        body = r.get("length", r.get("body", 0))
        row["body"] += body
        if kind == "document" and r["url"].split("#")[0] == final.split("#")[0]:
            html = body
    ends = [r["end"] for r in ours if "end" in r]
    return {
        "final_url": final[len(origin):], "html_bytes": html,
        "requests": len(ours), "cached": sum(k["cached"] for k in by_kind.values()),
        "failed": sorted({r["url"][len(origin):] for r in ours if r.get("failed")}),
        "non_2xx": sorted({r["url"][len(origin):] for r in ours
                           if r.get("status", 200) >= 400}),
        "pending": sum(1 for r in ours if "end" not in r),
        "wire_bytes": sum(k["wire"] for k in by_kind.values()),
        "body_bytes": sum(k["body"] for k in by_kind.values()),
        "by_kind": by_kind,
        "slowest": [{"url": r["url"][len(origin):],
                     "ms": round((r["end"] - r["start"]) * 1000)}
                    for r in sorted((r for r in ours if "end" in r),
                                    key=lambda r: r["start"] - r["end"])[:3]],
        "largest": [{"url": r["url"][len(origin):], "wire": r.get("wire", 0)}
                    for r in sorted(ours, key=lambda r: -r.get("wire", 0))[:5]],
        "external_requests": len(elsewhere),
        "dom_content_loaded_ms": round(dcl) if dcl is not None else None,
        "network_idle_ms": round((max(ends) - start) * 1000) if ends else None,
    }


def measure_page(browser, base: str, cookie: str, path: str) -> dict:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        host = urlsplit(base).hostname
        context.add_cookies([{"name": "riskmap_session", "value": cookie, "domain": host,
                              "path": "/", "httpOnly": True, "sameSite": "Strict"}])
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("response", lambda r: errors.append(f"{r.status} {r.url[len(base):]}")
                if r.status >= 400 else None)
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cold = load(page, cdp, base + path, base)
        warm = load(page, cdp, base + path, base)
        return {"cold": cold, "warm": warm, "console_errors": errors[:10]}
    finally:
        context.close()


def _launch():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not installed (scripts/chromium.sh)")
    playwright = sync_playwright().start()
    return playwright, playwright.chromium.launch(executable_path=chromium,
                                                  args=CHROMIUM_ARGS)


def run(kind: str, n: int, url: str) -> dict:
    from benchmarks.serve import add_user, ensure_built, free_port, officer_of, server

    ensure_built(url)
    park = busiest_park(url)
    officer = officer_of(url)
    roles = [("省级监管", "regulator", PROVINCE, ["/map", f"/regions/{PROVINCE}"]),
             ("市级监管", "regulator", CITY, ["/map", f"/regions/{CITY}"]),
             ("网格员", "grid_officer", officer, ["/grid"]),
             ("园区管理员", "park_admin", park, [f"/parks/{park}"])]
    tokens = {label: add_user(url, role, scope) for label, role, scope, _ in roles}
    port = free_port()
    cmd = ["riskmap", "serve", "--store", url, "--port", str(port)]
    rows = []
    with server(cmd, port, "/healthz", BENCH / f"pages-{kind}-{n}.log") as base:
        playwright, browser = _launch()
        try:
            for label, role, scope, paths in roles:
                cookie = session_cookie(base, tokens[label])
                for path in paths:
                    t = time.perf_counter()
                    figures = measure_page(browser, base, cookie, path)
                    row = {"store": kind, "equipment": n, "who": label, "role": role,
                           "scope": scope, "page": path, **figures,
                           "seconds": round(time.perf_counter() - t, 1)}
                    rows.append(row)
                    print(_line(row), flush=True)
            # the first page above met a server that had just started (its store reads
            # and tile cache cold); the same first view once more, the server warm
            label, role, scope, paths = roles[0]
            figures = measure_page(browser, base, session_cookie(base, tokens[label]),
                                   paths[0])
            rows.append({"store": kind, "equipment": n, "who": label + "（服务已预热）",
                         "role": role, "scope": scope, "page": paths[0], **figures,
                         "server_warm": True})
            print(_line(rows[-1]), flush=True)
        finally:
            browser.close()
            playwright.stop()
    return {"store": kind, "equipment": n, "url": url, "rows": rows}


def _kb(b: int) -> str:
    return f"{b / 1000:,.1f}"


def _line(row: dict) -> str:
    c, w = row["cold"], row["warm"]
    k = c["by_kind"]
    return (f"{row['store']:<8} {row['equipment']:>9,} {row['who']:<6} {row['page']:<16} "
            f"HTML {_kb(c['html_bytes']):>6} kB  cold {_kb(c['wire_bytes']):>8} kB "
            f"({c['requests']} req: js {_kb(k['script']['wire'])}, css "
            f"{_kb(k['stylesheet']['wire'])}, mvt {k['tiles']['requests']}×/"
            f"{_kb(k['tiles']['wire'])}, json {_kb(k['json']['wire'])})  "
            f"DCL {c['dom_content_loaded_ms']} ms idle {c['network_idle_ms']} ms | warm "
            f"{_kb(w['wire_bytes'])} kB {w['requests'] - w['cached']}/{w['requests']} req "
            f"DCL {w['dom_content_loaded_ms']} idle {w['network_idle_ms']} ms"
            + (f"  failed {c['failed']}" if c["failed"] else "")
            + (f"  errors {len(row['console_errors'])}" if row["console_errors"] else ""))


def over_limits(results: list[dict]) -> list[str]:
    """What breaks the issue's limits: /map's HTML ≥ 200 kB or its first view ≥ 2 MB."""
    out = []
    for result in results:
        for row in result["rows"]:
            cold = row["cold"]
            where = f"{row['store']} {row['equipment']:,} {row['who']} {row['page']}"
            if row["page"] == "/map" and cold["html_bytes"] >= HTML_LIMIT:
                out.append(f"{where}: HTML {cold['html_bytes']:,} B ≥ {HTML_LIMIT:,}")
            if row["page"] == "/map" and cold["wire_bytes"] >= FIRST_VIEW_LIMIT:
                out.append(f"{where}: first view {cold['wire_bytes']:,} B ≥ "
                           f"{FIRST_VIEW_LIMIT:,}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--equipment", type=int, action="append",
                        help="demo size (repeatable; default 50000)")
    parser.add_argument("--store", choices=["embedded", "postgis"], action="append",
                        help="embedded (default); postgis: the 1M database of "
                             "benchmarks.serve, --equipment ignored")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when /map's HTML ≥ 200 kB or its first view ≥ 2 MB")
    args = parser.parse_args()
    _venv_on_path()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, load {os.getloadavg()[0]:.2f}", flush=True)
    results = []
    for kind in args.store or ["embedded"]:
        if kind == "postgis":
            from benchmarks.serve import N, postgis_store

            runs = [(N, postgis_store())]
        else:
            runs = [(n, embedded_store(n)) for n in args.equipment or [50_000]]
        for n, url in runs:
            result = run(kind, n, url)
            result.update(at=datetime.now(UTC).isoformat(timespec="seconds"),
                          load=round(os.getloadavg()[0], 2), viewport=VIEWPORT,
                          machine=f"{platform.machine()} {os.cpu_count()} cores")
            out = BENCH / f"pages-{kind}-{n}.json"
            out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
            print(f"wrote {out}", flush=True)
            results.append(result)
    for result in results:  # the limits are /map's; other pages' first views for the record
        for row in result["rows"]:
            if row["page"] != "/map" and row["cold"]["wire_bytes"] >= FIRST_VIEW_LIMIT:
                print(f"note: {row['store']} {row['equipment']:,} {row['who']} {row['page']} "
                      f"first view {row['cold']['wire_bytes']:,} B (≥ 2 MB; not /map)")
    broken = over_limits(results)
    for line in broken:
        print("over the limit:", line)
    if args.check and broken:
        sys.exit(1)


if __name__ == "__main__":
    main()
