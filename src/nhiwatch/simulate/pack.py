"""Repack a simulated trail into fewer, larger objects (one per account, region and `hours`), keeping
CloudTrail's key layout. The simulator writes an object every few minutes, as CloudTrail does; tests
and benchmarks that upload to an S3 endpoint are quicker with fewer objects."""

from __future__ import annotations

import gzip
from collections import defaultdict
from pathlib import Path

import orjson


def pack_trail(root: Path, hours: int = 6) -> dict[str, bytes]:
    """{key relative to root: gzipped {"Records": [...]}} for every object below root."""
    packs: dict[str, list] = defaultdict(list)
    for path in sorted(root.rglob("*.json.gz")):
        folder, name = path.relative_to(root).as_posix().rsplit("/", 1)
        account, _, region, stamp = name.split("_")[:4]
        block = f"{stamp[:9]}{int(stamp[9:11]) // hours * hours:02d}00Z"
        packs[f"{folder}/{account}_CloudTrail_{region}_{block}_pack.json.gz"] += orjson.loads(
            gzip.decompress(path.read_bytes()))["Records"]
    return {key: gzip.compress(orjson.dumps({"Records": records}), 1) for key, records in packs.items()}
