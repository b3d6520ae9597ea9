"""`nhiwatch docs`: every generated document, written again from the metadata it comes from (detectors,
scenarios, posture checks, response actions, the event model and the finding contract)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from nhiwatch.cli.common import Exit, JsonOpt, console, emit_json, err, fail, styled


def _call(target: str) -> Callable[[], str]:
    module, name = target.split(":")
    return lambda: getattr(importlib.import_module(module), name)()


def _finding_schema() -> str:
    from nhiwatch.core.finding import FINDING_SCHEMA

    return json.dumps(FINDING_SCHEMA, indent=2) + "\n"


# docs/<name> -> what writes it. Tests compare each file with its generator, so none can drift.
GENERATED: dict[str, Callable[[], str]] = {
    "detectors.md": _call("nhiwatch.detect.docs:detectors_markdown"),
    "scenarios.md": _call("nhiwatch.simulate.scenarios:scenarios_markdown"),
    "posture.md": _call("nhiwatch.inventory.docs:posture_markdown"),
    "response.md": _call("nhiwatch.respond.docs:response_markdown"),
    "event-model.md": _call("nhiwatch.core.event:event_model_markdown"),
    "finding.schema.json": _finding_schema,
}


def docs(
    folder: Annotated[Optional[Path], typer.Option(
        "--folder", help="Where the documents live (default: docs/ of this checkout).")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Write nothing; exit 1 when a document differs from what its metadata generates.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Regenerate every generated document (detectors, scenarios, posture, response, event model, finding schema)."""
    target = folder or Path(__file__).resolve().parents[3] / "docs"
    if not target.is_dir():
        raise fail(f"no docs folder at {target} (give --folder)", Exit.USAGE, as_json)
    report = []
    for name, generate in GENERATED.items():
        path = target / name
        text = generate()
        current = path.read_text() if path.is_file() else None
        state = "current" if current == text else "stale" if check else "written"
        if state == "written":
            path.write_text(text)
        report.append({"path": str(path), "state": state})
    stale = [r["path"] for r in report if r["state"] == "stale"]
    if as_json:
        emit_json({"documents": report, "stale": stale})
    else:
        for row in report:
            console.print(styled((row["state"].ljust(8), "red" if row["state"] == "stale" else "dim"), " ", row["path"]))
        if stale:
            err.print(styled(("stale:", "bold red"), f" {len(stale)} document(s); run nhiwatch docs"))
    if stale:
        raise typer.Exit(int(Exit.FATAL))
