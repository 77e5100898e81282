"""Run the benchmarks: `make bench` (BENCH_SCALE=0.05 for a quick run; BENCH_ONLY=ingest,audit
for some of them). Each benchmark prints its figures; the summary goes to bench/out/.

Everything runs against its own PostgreSQL database (tsreview_bench, copied from a migrated
template for each benchmark), Redis db 11, a temporary media folder and free loopback ports;
every process started here is stopped, also on failure.
"""

import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ would come first on the path and shadow nothing but itself; the
# project root must come first so that `reports` is the app.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bench import stack

BENCHMARKS = ["ingest", "derivatives", "claiming", "review_page", "audit_chain", "report_xml", "upload_rss", "video",
              "clusters", "soak", "feedback"]


def main() -> int:
    only = [b for b in os.environ.get("BENCH_ONLY", "").split(",") if b] or BENCHMARKS
    unknown = set(only) - set(BENCHMARKS)
    if unknown:
        print(f"unknown benchmarks: {', '.join(sorted(unknown))}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    work = stack.workdir()
    stack.configure_environment(work)
    stack.django_setup()
    info = stack.machine()
    stack.say(f"machine: {info['cores']} cores, {info['memory_gib']} GiB, {info['cpu']}; {info['date']}; "
              f"BENCH_SCALE={info['scale']}; load average {' '.join(info['load_before'])}")
    results, started = {"machine": info}, time.monotonic()
    failed = False
    try:
        stack.database_create()
        for name in only:
            module = __import__(f"bench.{name}", fromlist=["run"])
            stack.say(f"\n== {name} ==")
            stack.database_reset()
            stack.redis_flush()
            stack.media_clear()
            t0 = time.monotonic()
            try:
                results[name] = module.run()
            except Exception as exc:  # noqa: BLE001 - one failed benchmark must not hide the others
                import traceback

                traceback.print_exc()
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                failed = True
            finally:
                stack.Service.stop_all()
            stack.say(f"({name}: {time.monotonic() - t0:.0f} s)")
    finally:
        stack.Service.stop_all()
        stack.database_drop()
        stack.redis_flush()
        shutil.rmtree(work, ignore_errors=True)
    results["total_seconds"] = round(time.monotonic() - started)
    results["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    stack.write_json(stack.OUT / "results.json", results)
    summary = summarise(results)
    (stack.OUT / "summary.md").write_text(summary)
    stack.say("\n" + summary)
    stack.say(f"total {results['total_seconds']} s; figures in {stack.OUT / 'results.json'}")
    return 1 if failed else 0


def summarise(results: dict) -> str:
    info = results["machine"]
    lines = [f"Machine: {info['cores']} cores, {info['memory_gib']} GiB ({info['cpu']}); {info['date']}; "
             f"BENCH_SCALE={info['scale']}", "", "| benchmark | figure | target | met |", "|---|---|---|---|"]
    for name in BENCHMARKS:
        result = results.get(name)
        if result is None:
            continue
        if "error" in result:
            lines.append(f"| {name} | failed: {result['error']} | | |")
            continue
        for row in result.get("rows", []):
            figure, target, met = row
            lines.append(f"| {name} | {figure} | {target} | {met} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
