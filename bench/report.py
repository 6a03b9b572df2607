"""Run every benchmark and rewrite bench/RESULTS.md from their figures (what `make bench` runs).

    python bench/report.py [--quick] [--only NAME ...] [--output PATH] [--note TEXT]

Each bench script runs in turn with its default arguments (`--quick`: smaller ones, for a fast check)
and `--json bench/out/NAME.json`; its printout is shown as it runs and kept. Then the report is written
whole: the date, the machine (CPUs, memory, CPU model, kernel, Python, PostgreSQL, Redis), how busy
the machine was before each bench, and for every figure its value, its baseline from the same run, the
ratio, the goal where one exists, and the exact command that produced it.

A full run of every bench writes bench/RESULTS.md; `--quick` or `--only` write bench/out/RESULTS-quick.md
or bench/out/RESULTS-partial.md instead (bench/out/ is git-ignored), unless --output says otherwise.
The earlier, hand-written per-issue record is bench/HISTORY.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
BUSY_WARNING = 0.15  # other work using more of the CPUs than this before a bench: say the figures are noisy


@dataclass(frozen=True)
class Bench:
    name: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    timeout: int = 1800


# In the order they run. Full arguments: several rounds where a script has them (medians of paired rounds).
BENCHES = (
    Bench("status_throughput", ("--rounds", "7", "--duration", "8"),
          ("--rounds", "1", "--duration", "3", "--users", "50")),
    Bench("appointments_throughput", ("--clients", "8", "--duration", "10"), ("--duration", "3")),
    Bench("webhook_throughput", ("--deliveries", "2000", "--accounts", "20", "--rounds", "3", "--raw-seconds", "5",
                                 "--rate", "50", "--seconds", "10", "--stalled", "200"),
          ("--deliveries", "400", "--rounds", "1", "--raw-seconds", "2", "--seconds", "3", "--stalled", "20")),
    Bench("recovery", ("--events", "2000", "--rounds", "2"), ("--events", "400", "--rounds", "1")),
    Bench("worker_memory", ("--deliveries", "10000", "--batch", "1000"), ("--deliveries", "2000")),
    Bench("google_sync", ("--changes", "50", "--users", "10", "--appointments", "300", "--rounds", "3"),
          ("--changes", "10", "--users", "4", "--appointments", "60", "--rounds", "1")),
    Bench("availability", ("--rounds", "5", "--duration", "8"),
          ("--users", "3", "--appointments", "50", "--events", "60", "--rounds", "1", "--duration", "3",
           "--races", "2", "--changes", "3")),
    Bench("google_push", ("--requests", "2000", "--burst", "100", "--bursts", "3"), ("--requests", "200")),
)


def _interrupted(signum, _frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupted)  # like Ctrl-C: the running bench is stopped cleanly
    signal.signal(signal.SIGHUP, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs for a fast check (~3 min), not for the record")
    parser.add_argument("--only", action="append", choices=[b.name for b in BENCHES], metavar="NAME",
                        help="run only this bench (repeatable): " + ", ".join(b.name for b in BENCHES))
    parser.add_argument("--output", type=Path, help="where to write the report (default: see above)")
    parser.add_argument("--note", action="append", default=[], help="a line for the report's header (repeatable)")
    args = parser.parse_args()
    output = args.output or (OUT / "RESULTS-quick.md" if args.quick else OUT / "RESULTS-partial.md" if args.only
                             else BENCH / "RESULTS.md")
    if not shutil.which("wrk") and (not args.only or "status_throughput" in args.only):
        sys.exit("wrk is required by bench/status_throughput.py: apt-get install wrk (make bench installs it)")
    OUT.mkdir(exist_ok=True)

    started = datetime.now(UTC)
    clock = time.monotonic()
    runs = []
    for bench in BENCHES:
        if args.only and bench.name not in args.only:
            continue
        runs.append(run(bench, args.quick))
    total_seconds = time.monotonic() - clock

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(runs, started, total_seconds, args.quick, args.note))
    shown = output.resolve().relative_to(ROOT) if output.resolve().is_relative_to(ROOT) else output
    print(f"\n{len(runs)} benches in {total_seconds / 60:.1f} min; report written to {shown}")
    failed = [r["name"] for r in runs if r["failed"]]
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


def run(bench: Bench, quick: bool) -> dict:
    """Run one bench script; its printout is echoed and kept, its stderr kept in bench/out/NAME.stderr."""
    json_path = OUT / f"{bench.name}.json"
    json_path.unlink(missing_ok=True)
    command = [sys.executable, str(BENCH / f"{bench.name}.py"), *(bench.quick if quick else bench.full),
               "--json", str(json_path.relative_to(ROOT))]
    busy = cpu_busy()
    print(f"\n== {bench.name} (other work on the machine before it: {busy:.0%} of the CPUs)", flush=True)
    stderr_path = OUT / f"{bench.name}.stderr"
    clock = time.monotonic()
    lines: list[str] = []
    with stderr_path.open("w") as stderr:
        # A session of its own: a Ctrl-C reaches it once, through interrupt(), not also from the terminal
        # (a second signal would cut short the clean-up that stops its servers and workers).
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1,
                                   start_new_session=True)
        timer = threading.Timer(bench.timeout, interrupt, args=(process,))
        timer.start()
        try:
            for line in process.stdout:
                print(line, end="", flush=True)
                lines.append(line.rstrip("\n"))
            process.wait()
        except BaseException:
            interrupt(process)  # Ctrl-C: let the bench stop what it started
            raise
        finally:
            timer.cancel()
    seconds = time.monotonic() - clock
    document = json.loads(json_path.read_text()) if process.returncode == 0 and json_path.exists() else None
    error = None
    if document is None:
        tail = stderr_path.read_text().strip().splitlines()[-15:]
        late = f" (stopped after its {bench.timeout} s limit)" if seconds >= bench.timeout else ""
        error = f"exit status {process.returncode}{late}\n" + "\n".join(tail)
        print(f"!! {bench.name} failed: {error}", file=sys.stderr, flush=True)
    return {"name": bench.name, "document": document, "printout": lines, "seconds": seconds, "busy": busy,
            "failed": document is None, "error": error,
            "command": document["command"] if document else shlex.join(
                [os.path.relpath(command[0], ROOT), os.path.relpath(command[1], ROOT), *command[2:]])}


def interrupt(process: subprocess.Popen) -> None:
    """SIGTERM first (the script's `finally` stops its servers and workers: bench/harness.py), then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_busy(seconds: float = 2.0) -> float:
    """Share of all CPUs busy over `seconds` while no bench runs: other work on a shared machine."""
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 0.0 if total1 == total0 else 1 - (idle1 - idle0) / (total1 - total0)


# -- the machine ----------------------------------------------------------------------------------

def machine() -> list[tuple[str, str]]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    memory = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    wrk = "not installed"
    if shutil.which("wrk"):
        result = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
        first = (result.stdout or result.stderr or "?").splitlines()[0]
        wrk = first.split(" Copyright")[0]  # "wrk debian/4.1.0-3+b2 [epoll]"
    return [("CPUs (nproc)", str(usable)),
            ("CPU model", f"{models[0]}" if models else platform.processor() or "?"),
            ("memory", f"{memory / 1024 / 1024:.1f} GiB"),
            ("kernel", f"{platform.system()} {platform.release()}"),
            ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
            ("wrk", wrk)]


# -- the report -----------------------------------------------------------------------------------

def number(value: float | int | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


def with_unit(value, unit: str | None) -> str:
    if not unit:
        return number(value)
    if value == 1 and unit.endswith("s") and unit.isalpha():
        unit = unit[:-1]  # 1 call, 1 change
    return f"{number(value)} {unit}"


def goal_cell(item: dict) -> str:
    if not item.get("goal"):
        return "—"
    verdict = "" if item.get("met") is None else (" — **met**" if item["met"] else " — **not met**")
    return f"{item['goal']}{verdict}"


def ratio_cell(item: dict) -> str:
    if item.get("ratio") is None:
        return "—"
    note = f" ({item['ratio_note']})" if item.get("ratio_note") else ""
    return f"{item['ratio']:.2f}{note}"


def baseline_cell(item: dict) -> str:
    baseline = item.get("baseline")
    if not baseline:
        return "—"
    return f"{with_unit(baseline['value'], baseline['unit'])} ({baseline['label']})"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(runs: list[dict], started: datetime, total_seconds: float, quick: bool, notes: list[str]) -> str:
    servers = next((r["document"]["servers"] for r in runs if r["document"] and r["document"].get("servers")), {})
    busy = [r["busy"] for r in runs]
    lines = ["# Benchmark results", ""]
    lines.append(f"Generated by `make bench` (`bench/report.py{' --quick' if quick else ''}`) on "
                 f"{started.strftime('%Y-%m-%d %H:%M UTC')}; {len(runs)} benches in {total_seconds / 60:.1f} min. "
                 f"Do not edit by hand: the next `make bench` rewrites this file. The earlier per-issue record, "
                 f"with what each optimisation changed, is [HISTORY.md](HISTORY.md).")
    lines.append("")
    if quick:
        lines += ["**Quick mode**: small runs for a fast check; these figures are not for the record.", ""]
    lines += ["## Machine", "", "| | |", "|---|---|"]
    for key, value in machine():
        lines.append(f"| {key} | {cell(value)} |")
    if servers:
        lines.append(f"| PostgreSQL | {servers['postgresql']}, {servers['postgresql_where']}; a scratch database "
                     f"per bench |")
        lines.append(f"| Redis | {servers['redis']}, {servers['redis_where']}; flushed before and after each "
                     f"bench |")
    lines.append(f"| other work before each bench | {', '.join(f'{b:.0%}' for b in busy)} of the CPUs "
                 f"(2 s of /proc/stat while no bench ran) |")
    lines.append("")
    lines += ["Every process of a bench (gunicorn, workers, the Google sandbox, the HTTPS receiver, the load "
              "generator) and the databases share this machine's CPUs over loopback.", ""]
    if busy and max(busy) > BUSY_WARNING:
        lines += [f"**The machine was shared while this ran**: other work used up to {max(busy):.0%} of the "
                  f"CPUs just before a bench started, so absolute figures are noisy; read the ratios, whose "
                  f"baselines ran in the same rounds.", ""]
    for note in notes:
        lines += [note, ""]

    lines += ["## Summary", "", "| figure | this run | baseline (same run) | ratio | goal |", "|---|---|---|---|---|"]
    for r in runs:
        if r["failed"]:
            lines.append(f"| **{r['name']} failed** (see below) | — | — | — | — |")
            continue
        for item in r["document"]["figures"]:
            lines.append(f"| {cell(item['label'])} | {with_unit(item['value'], item['unit'])} | "
                         f"{cell(baseline_cell(item))} | {cell(ratio_cell(item))} | {cell(goal_cell(item))} |")
    lines.append("")
    lines.append("Each section below gives the exact command (from the repository root; `make bench` adds `--json`, "
                 "which only writes the figures for this report), what it measures and its printout.")
    lines.append("")

    for r in runs:
        document = r["document"]
        title = document["title"] if document else r["name"]
        lines += [f"## {title}", "", "Command:", "", f"    {r['command']}", ""]
        lines.append(f"{r['seconds']:.0f} s; other work on the machine just before: {r['busy']:.0%} of the CPUs.")
        lines.append("")
        if document is None:
            lines += ["**Failed**:", "", "```", r["error"] or "", "```", ""]
            if r["printout"]:
                lines += ["Printout:", "", "```", *r["printout"], "```", ""]
            continue
        lines += [document["method"], ""]
        lines += ["| figure | this run | baseline (same run) | ratio | goal | details |",
                  "|---|---|---|---|---|---|"]
        for item in document["figures"]:
            lines.append(f"| {cell(item['label'])} | {with_unit(item['value'], item['unit'])} | "
                         f"{cell(baseline_cell(item))} | {cell(ratio_cell(item))} | {cell(goal_cell(item))} | "
                         f"{cell(item.get('details') or '')} |")
        lines += ["", "Printout:", "", "```", *r["printout"], "```", ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("\ninterrupted: the running bench was stopped; no report written")
