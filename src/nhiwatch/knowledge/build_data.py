"""Regenerate the data tables shipped in ``nhiwatch/knowledge/data/`` from the published sources.

    python -m nhiwatch.knowledge.build_data /work/shared/data [--out DIR] [--check]

The folder holds ``netranges/`` (providers' published IP-range files, named as in
``netranges.SOURCES``, with a SOURCE.txt naming the mirror commit and date) and ``vendors/``
(accounts.yaml of fwdcloudsec/known_aws_accounts, with its SOURCE.txt). Writes netranges.json.gz and
vendors.json; with --check, writes nothing and exits 1 if the shipped files differ from what the
sources give. Build time only: the product never reads these folders.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

from nhiwatch.knowledge.netranges import SNAPSHOT_NAME, SOURCES, build_snapshot
from nhiwatch.knowledge.vendors import VENDORS_NAME

DATA_DIR = Path(__file__).with_name("data")
_MIRROR = re.compile(r"(\S+/\S+) @ ([0-9a-f]{40}) \((\d{4}-\d{2}-\d{2})\)")


def _mirror(source_txt: Path) -> tuple[str | None, str | None, str | None]:
    """(repo, commit, date) named on a SOURCE.txt's 'owner/repo @ <commit> (<date>)' line."""
    if not source_txt.is_file():
        return None, None, None
    match = _MIRROR.search(source_txt.read_text(encoding="utf-8"))
    return (match[1], match[2], match[3]) if match else (None, None, None)


def netranges_snapshot(folder: Path) -> bytes:
    """The snapshot of the published files in ``folder`` (a netranges/ folder)."""
    folder = Path(folder)
    files = {source: (folder / spec.file).read_bytes() for source, spec in SOURCES.items()}
    repo, commit, date = _mirror(folder / "SOURCE.txt")
    return build_snapshot(files, retrieved=date, via=f"{repo}@{commit}" if repo else None)


# ----------------------------------------------------------------------------------------------
# accounts.yaml: PyYAML is not a dependency of nhiwatch, so this file's simple structure (a list of
# flat mappings whose values are scalars, flow lists, possibly over several lines, or block lists)
# is read here. Anything else is an error rather than a guess.

def _quoted(text: str, pos: int) -> tuple[str, int]:
    quote, out, pos = text[pos], [], pos + 1
    while pos < len(text):
        char = text[pos]
        if quote == "'" and char == "'":
            if text.startswith("''", pos):
                out.append("'")
                pos += 2
                continue
            return "".join(out), pos + 1
        if quote == '"' and char == "\\" and pos + 1 < len(text):
            out.append({"n": "\n", "t": "\t"}.get(text[pos + 1], text[pos + 1]))
            pos += 2
            continue
        if quote == '"' and char == '"':
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    raise ValueError(f"unterminated string: {text[:60]!r}")


def _plain(raw: str) -> object:
    raw = raw.strip()
    if raw in ("", "~", "null", "Null", "NULL"):
        return None
    if raw in ("true", "True", "TRUE", "false", "False", "FALSE"):
        return raw.lower() == "true"
    if re.fullmatch(r"[-+]?[0-9]+", raw):
        return int(raw)
    return raw


def _value(text: str, pos: int, stops: str) -> tuple[object, int]:
    """A scalar at text[pos:] (after spaces); stops: characters that end a plain scalar."""
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos < len(text) and text[pos] in "'\"":
        return _quoted(text, pos)
    end = pos
    while end < len(text) and text[end] not in stops and not text.startswith(" #", end):
        end += 1
    return _plain(text[pos:end]), end


def _flow_list(text: str) -> tuple[list, int]:
    items: list = []
    pos = 1
    while True:
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if pos >= len(text):
            raise ValueError(f"unterminated list: {text[:60]!r}")
        if text[pos] == "]":
            return items, pos + 1
        value, pos = _value(text, pos, ",]")
        items.append(value)
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos >= len(text) or text[pos] != "]":
            raise ValueError(f"bad list: {text[:60]!r}")


def _rest_is_empty(text: str, pos: int, lineno: int) -> None:
    rest = text[pos:].strip()
    if rest and not rest.startswith("#"):
        raise ValueError(f"line {lineno}: unexpected {rest[:40]!r}")


def _closed(text: str) -> bool:
    try:
        _flow_list(text)
    except ValueError:
        return False
    return True


def parse_accounts_yaml(text: str) -> list[dict]:
    """accounts.yaml -> the same list of dicts PyYAML's safe_load gives for it."""
    items: list[dict] = []
    current: dict | None = None
    block_key: str | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line, lineno = lines[i], i + 1
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0 and stripped.startswith("- "):
            current, block_key = {}, None
            items.append(current)
            body = stripped[2:].lstrip()
        elif current is not None and indent > 0 and block_key is not None and stripped.startswith("- "):
            value, pos = _value(stripped, 2, "")
            _rest_is_empty(stripped, pos, lineno)
            current[block_key] = (current[block_key] or []) + [value]
            continue
        elif current is not None and indent > 0:
            body = stripped
        else:
            raise ValueError(f"line {lineno}: unsupported YAML: {stripped[:60]!r}")
        match = re.match(r"([A-Za-z_][\w-]*):(?= |$)", body)
        if match is None:
            raise ValueError(f"line {lineno}: expected 'key: value', got {body[:60]!r}")
        key, rest = match[1], body[match.end():].strip()
        if key in current:
            raise ValueError(f"line {lineno}: duplicate key {key!r}")
        block_key = None
        if not rest or rest.startswith("#"):
            current[key] = None
            block_key = key
        elif rest.startswith("["):
            while not _closed(rest):
                if i >= len(lines):
                    raise ValueError(f"line {lineno}: unterminated list")
                rest += " " + lines[i].strip()
                i += 1
            value, pos = _flow_list(rest)
            _rest_is_empty(rest, pos, lineno)
            current[key] = value
        else:
            value, pos = _value(rest, 0, "")
            _rest_is_empty(rest, pos, lineno)
            current[key] = value
    return items


def vendors_table(folder: Path) -> bytes:
    """vendors.json from a vendors/ folder holding accounts.yaml (and SOURCE.txt)."""
    folder = Path(folder)
    entries = parse_accounts_yaml((folder / "accounts.yaml").read_text(encoding="utf-8"))
    repo, commit, date = _mirror(folder / "SOURCE.txt")
    source_txt = (folder / "SOURCE.txt").read_text(encoding="utf-8") if (folder / "SOURCE.txt").is_file() else ""
    licence = re.search(r"Licen[cs]e:\s*([\w.+-]+)", source_txt)
    vendors = []
    for entry in entries:
        if not isinstance(entry.get("name"), str) or not isinstance(entry.get("accounts"), list):
            raise ValueError(f"vendor entry without name or accounts: {entry}")
        sources = entry.get("source")
        sources = [sources] if isinstance(sources, str) else list(sources or [])
        accounts = [f"{a:012d}" if isinstance(a, int) else str(a).strip() for a in entry["accounts"]]
        bad = [a for a in accounts if not re.fullmatch(r"\d{12}", a)]
        if bad:
            raise ValueError(f"{entry['name']}: not 12-digit account ids: {bad}")
        vendor = {"name": entry["name"].strip(), "source": sources[0] if sources else None,
                  "type": entry.get("type"), "accounts": accounts}
        if entry.get("enabled") is False:
            vendor["enabled"] = False
        vendors.append(vendor)
    header = {"repo": repo, "commit": commit, "date": date, "file": "accounts.yaml",
              "license": licence[1].rstrip(".") if licence else None, "vendors": len(vendors)}
    lines = [json.dumps(vendor, ensure_ascii=False, sort_keys=True) for vendor in vendors]
    text = ('{"source": ' + json.dumps(header, sort_keys=True) + ',\n "vendors": [\n  '
            + ",\n  ".join(lines) + "\n]}\n")
    return text.encode("utf-8")


def build_all(root: Path) -> dict[str, bytes]:
    """{file name in data/: content} from a folder holding netranges/ and vendors/."""
    root = Path(root)
    return {SNAPSHOT_NAME: netranges_snapshot(root / "netranges"), VENDORS_NAME: vendors_table(root / "vendors")}


def _same(name: str, old: bytes, new: bytes) -> bool:
    if name.endswith(".gz"):  # compressed bytes may differ between zlib builds; the content may not
        return gzip.decompress(old) == gzip.decompress(new)
    return old == new


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nhiwatch.knowledge.build_data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="folder holding netranges/ and vendors/")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help=f"output folder (default {DATA_DIR})")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out, write nothing")
    args = parser.parse_args(argv)
    outputs = build_all(args.root)
    stale = []
    for name, content in outputs.items():
        target = args.out / name
        if args.check:
            if not target.is_file() or not _same(name, target.read_bytes(), content):
                stale.append(name)
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        print(f"{target}: {len(content):,} bytes")
    if stale:
        print(f"out of date: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
