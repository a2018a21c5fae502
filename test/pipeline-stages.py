#!/usr/bin/env python3
"""Split a CPU profile of BenchmarkPipeline by pipeline stage.

usage: test/pipeline-stages.py BINARY PROFILE [CPU_US_PER_REPORT]

Each sample goes to the first stage whose pattern appears anywhere in its
stack (ingest is split into its publish to the broker and the rest) (so process's store writes count as process, and a function called
in-process by the broker counts as that function). With the benchmark's
cpu-us/report figure it prints microseconds of CPU per report per stage.
"""
import re
import subprocess
import sys

STAGES = [
    # ingest's publish (the broker's store of the event, called in process)
    # first, so the "ingest" row is the handler's own work; the two add up
    # to what one "ingest" row counted before. A stage of several patterns
    # (joined by " && ") needs each of them on the stack.
    ("ingest: publishing (core/publish, broker)",
     r"dronetrack/functions/ingest\. && core/publish\.\(\*Publisher\)"),
    ("ingest", r"dronetrack/functions/ingest\.|core/publish\.\(\*Publisher\)"),
    ("process", r"dronetrack/functions/process\."),
    ("cache-refresh", r"dronetrack/functions/cache-refresh\."),
    ("alerts", r"dronetrack/functions/alerts\."),
    ("serve-map", r"dronetrack/functions/serve-map\."),
    ("broker (core/broker, NATS JetStream)", r"dronetrack/core/broker\.|nats-io/"),
    ("store (bolt, outside a handler)", r"dronetrack/core/store|go\.etcd\.io/bbolt"),
    ("loopback HTTP (servers, client conns)", r"^net/http\.|^net\.|internal/poll\."),
    ("load generator (benchmark)", r"BenchmarkPipeline"),
    ("GC", r"runtime\.gcBgMarkWorker|runtime\.bgsweep|runtime\.bgscavenge"),
]


def main():
    binary, prof = sys.argv[1], sys.argv[2]
    per_report = float(sys.argv[3]) if len(sys.argv) > 3 else None
    out = subprocess.run(["go", "tool", "pprof", "-traces", binary, prof],
                         capture_output=True, text=True, check=True).stdout
    totals = {name: 0.0 for name, _ in STAGES}
    totals["other (runtime, scheduler, timers)"] = 0.0
    pats = [(n, [re.compile(q) for q in p.split(" && ")]) for n, p in STAGES]
    for block in out.split("-----------+-------------------------------------------------------"):
        lines = [l for l in block.splitlines() if l.strip()]
        if not lines:
            continue
        m = re.match(r"\s*([\d.]+)(ms|s|us|µs)\s+(.*)", lines[0])
        if not m:
            continue
        v = float(m.group(1)) * {"s": 1e3, "ms": 1.0, "us": 1e-3, "µs": 1e-3}[m.group(2)]
        frames = [m.group(3).strip()] + [l.strip() for l in lines[1:]]
        frames = [f for f in frames if not f.startswith("bytes:") and not f.startswith("label")]
        stage = "other (runtime, scheduler, timers)"
        for name, pat in pats:
            if all(any(q.search(f) for f in frames) for q in pat):
                stage = name
                break
        totals[stage] += v
    total = sum(totals.values())
    print(f"{'stage':42s} {'share':>7s}" + (f" {'us/report':>10s}" if per_report else ""))
    for name, v in totals.items():
        line = f"{name:42s} {100 * v / total:6.1f}%"
        if per_report:
            line += f" {per_report * v / total:10.0f}"
        print(line)
    print(f"{'total samples':42s} {total / 1e3:6.1f}s" + (f" {per_report:10.0f}" if per_report else ""))


if __name__ == "__main__":
    main()
