"""Command line: ``python -m stclusters {run,where,verify}`` (the Makefile's targets use it)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from stclusters import config, handover, tasks
from stclusters.publish import publish


def _where(conf: dict) -> int:
    params = config.resolve(conf)
    out = params.edition_output
    print(f"edition {params.edition}:")
    print(
        f"  ranking:     {out / 'ranking.csv'}"
        + ("" if (out / "ranking.csv").exists() else "  (not published)")
    )
    print(
        f"  report:      {out / 'report.html'}"
        + ("" if (out / "report.html").exists() else "  (not written)")
    )
    print(f"  manifest:    {out / 'manifest.json'}")
    summary = handover.GateSummary.read(params)
    if summary is not None:
        state = "passed" if summary.passed else "FAILED"
        print(f"  validation:  {summary.run_dir / 'summary.md'} ({state})")
        if (out / "validation.html").exists():
            print(f"  checks:      {out / 'validation.html'} (readable offline)")
        print(f"  data docs:   {summary.data.get('data_docs')}")
    print(f"  database:    {params.duckdb_path}")
    # The run's verdicts last: what `make run` leaves on the screen.
    outcome = tasks.read_outcome(params)
    print(f"gate:    {outcome.get('gate', 'unknown (no run recorded in this workspace)')}")
    print(f"publish: {outcome.get('publish', 'unknown (no run recorded in this workspace)')}")
    return 0


def _verify(edition: int, output_dir: str | None, public_key: str | None) -> int:
    # verify only reads: the output folder is the caller's choice, not a run conf's
    conf = {"edition": edition}
    params = config.resolve(conf)
    target = (
        config.RunParams(edition=edition, output_dir=output_dir).edition_output
        if output_dir
        else params.edition_output
    )
    key = public_key or os.environ.get(publish.VERIFY_KEY_FILE_ENV)
    problems = publish.verify(target, Path(key) if key else None)
    if problems:
        print(f"{target}: {len(problems)} problem(s):")
        for p in problems:
            print(f"  - {p}")
        return 1
    signed = " (manifest signature verified)" if key else ""
    print(f"{target}: every file matches its manifest checksum{signed}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stclusters")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "where"):
        p = sub.add_parser(name)
        p.add_argument("--conf", default="{}", help="run conf as JSON, as for the DAG")
    v = sub.add_parser("verify")
    v.add_argument("--edition", type=int, required=True)
    v.add_argument("--output-dir")
    v.add_argument(
        "--public-key",
        help=f"PEM Ed25519 public key to check manifest.json.sig (default: ${publish.VERIFY_KEY_FILE_ENV})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "verify":
        return _verify(args.edition, args.output_dir, args.public_key)
    try:
        conf = json.loads(args.conf or "{}")
    except json.JSONDecodeError as exc:
        parser.error(f"--conf is not valid JSON: {exc}")
    if args.command == "where":
        return _where(conf)
    print(json.dumps(tasks.run_all(conf), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
