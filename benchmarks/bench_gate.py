"""End-to-end latency of ``margin gate`` as a Claude Code PreToolUse hook.

Each sample is one fresh process (interpreter start, imports, schedule load, pricing,
JSON answer), as Claude Code runs it before every tool call; like ``hyperfine``, a few
warm-up runs come first and the p50/p99 over ``--runs`` samples are reported. Cases are
interleaved run by run so that load from other processes affects them alike. The bare
interpreter (``python -c pass``) is measured the same way as the floor.

Bytecode: an installed package ships compiled ``.pyc`` files, so the default run gives
the processes a private ``PYTHONPYCACHEPREFIX`` (filled by the warm-up) even where the
environment sets ``PYTHONDONTWRITEBYTECODE``; ``--no-bytecode`` measures the slower
compile-every-time case.

Prints one JSON object (milliseconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAYLOADS = {
    "read": {"tool_name": "Read", "tool_input": {"file_path": "/repo/src/app.py"}},
    "bash_compound": {
        "tool_name": "Bash",
        "tool_input": {"command": "cd build && pytest -q 2>&1 | tail -5 && rm -rf out"},
    },
    "mcp_unknown": {"tool_name": "mcp__github__create_issue", "tool_input": {"title": "x"}},
}


def _base(payload: dict[str, object]) -> dict[str, object]:
    return {
        "session_id": "bench",
        "transcript_path": "/tmp/t.jsonl",
        "cwd": "/repo",
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_use_id": "toolu_bench",
        **payload,
    }


def _sample(cmd: list[str], stdin: bytes, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, input=stdin, stdout=subprocess.DEVNULL, check=True, env=env)
    return (time.perf_counter() - t0) * 1000.0


def _stats(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, round(0.99 * (len(xs) - 1)))]
    return {
        "p50_ms": round(statistics.median(xs), 2),
        "p99_ms": round(p99, 2),
        "min_ms": round(xs[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-bytecode", action="store_true", help="compile sources on every run")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "MARGIN_LEDGER"}
    cache = tempfile.mkdtemp(prefix="margin-bench-pyc-")
    if args.no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache
    py = sys.executable
    gate = [py, "-c", "import sys; from margin.agent.gate import main; sys.exit(main())"]
    out: dict[str, object] = {
        "python": sys.version.split()[0],
        "runs": args.runs,
        "bytecode": not args.no_bytecode,
    }
    cases: dict[str, list[str]] = {"python_floor": [py, "-c", "pass"]}
    for name in PAYLOADS:
        cases[f"gate_{name}"] = gate
    with tempfile.TemporaryDirectory() as tmp:
        ledger_cmd = [
            *gate[:-1],
            gate[-1].replace("main()", f"main(['--ledger', {str(Path(tmp) / 'l.db')!r}])"),
        ]
        try:
            import margin.ledger.store  # noqa: F401

            cases["gate_read_with_ledger"] = ledger_cmd
        except ImportError:
            out["ledger"] = "margin.ledger.store not available: ledger case skipped"
        payloads = {}
        for name in cases:
            key = name.removeprefix("gate_").removesuffix("_with_ledger")
            payloads[name] = json.dumps(_base(PAYLOADS.get(key, PAYLOADS["read"]))).encode()
        for _ in range(args.warmup):
            for name, cmd in cases.items():
                _sample(cmd, payloads[name], env)
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):  # interleaved, so machine load hits every case alike
            for name, cmd in cases.items():
                samples[name].append(_sample(cmd, payloads[name], env))
        results = {name: _stats(xs) for name, xs in samples.items()}
    out["results"] = results
    out["target_ms"] = 50.0
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
