"""`nhiwatch spark watch`: the engine on Spark Structured Streaming, for continuous runs.

New CloudTrail objects under a path (or bucket prefix) are read as they appear, normalized with the
ingest parser, fanned out to their identities and judged by the same per-identity step, with each
identity's baseline kept between micro-batches (a restart continues where it stopped). Findings are written per micro-batch under the batch's id, so a batch replayed after a
crash overwrites its own output instead of adding to it. Quarantined records go to their own
Parquet sink.

Each identity's baseline is per-key state kept as versioned Parquet beside the output (one version
per micro-batch, joined to the batch's events by identity), rather than in Spark's state store:
the engine's grouped Arrow functions then serve batch and streaming alike.

Within a micro-batch an identity's events are judged in time order; across micro-batches, in the
order objects arrive (a late object is judged when it comes, as `nhiwatch watch` does). Findings
still open at the end of a micro-batch are closed there (a burst split across two micro-batches is
two findings). Peer groups come from the learned states given at start (--state, e.g. a batch run's
output) and stay fixed while the query runs."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa

from nhiwatch.detect.runner import identity_infos
from nhiwatch.spark.engine import OUTPUT_DDL, OUTPUT_SCHEMA, Shared, judge_identity, peer_profiles, workload_context
from nhiwatch.spark.job import PARSED_SCHEMA, context_rows, events_by_identity, parse_partition

BINARY_FILE_SCHEMA = "path string, modificationTime timestamp, length long, content binary"
def _peer_states(state_dir: Path | None) -> list[tuple[str, str]]:
    """(peer key, state) of the mature baselines a run starts from."""
    if state_dir is None:
        return []
    import duckdb

    return duckdb.sql(f"SELECT peer_key, state FROM read_parquet('{state_dir}/*.parquet') WHERE mature").fetchall()


def _state_versions(out: Path) -> list[int]:
    root = out / "state"
    if not root.is_dir():
        return []
    return sorted(int(p.name.split("=", 1)[1]) for p in root.glob("batch=*") if (p / "_SUCCESS").exists())


def start(spark, path: str, out: Path, checkpoint: Path, *, inventory_home: Path | None = None,
          state_dir: Path | None = None, files_per_trigger: int = 1000, once: bool = False,
          interval_seconds: int = 60):
    """Start the streaming query; returns it.

    The per-identity state is versioned by micro-batch: batch N reads the states written by the last
    completed batch before it and writes version N (only the identities it touched change). A batch
    replayed after a crash therefore starts from the same states and overwrites its own output:
    exactly once, whatever the crash point."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    infos = {}
    if inventory_home is not None:
        from nhiwatch.store.db import Store

        with Store(inventory_home, read_only=True) as store:
            infos = identity_infos(store)
    peer_states = _peer_states(state_dir)
    inventory_accounts = {i.account_id for i in infos.values() if i.account_id}
    peers = peer_profiles(peer_states)
    out.mkdir(parents=True, exist_ok=True)
    accounts_file = out / "accounts.json"  # every account seen so far (it only grows; a replay adds nothing)

    files = (spark.readStream.format("binaryFile").schema(BINARY_FILE_SCHEMA)
             .option("recursiveFileLookup", "true").option("maxFilesPerTrigger", files_per_trigger)
             .load(path).select("path", "content"))
    parsed = files.mapInArrow(parse_partition, from_arrow_schema(PARSED_SCHEMA))

    def process(batch, batch_id: int) -> None:
        batch = batch.persist()
        (batch.where("quarantine_reason IS NOT NULL")
         .select("source_file", "source_locator", "quarantine_reason", "quarantine_raw")
         .write.mode("overwrite").parquet(str(out / "quarantine" / f"batch={batch_id:09d}")))
        events = batch.where("quarantine_reason IS NULL").drop("quarantine_reason", "quarantine_raw") \
            .dropDuplicates(["uid"])
        # Known accounts, as the embedded watcher knows them: the inventory's and every one seen so far.
        seen = set(orjson.loads(accounts_file.read_bytes())) if accounts_file.exists() else set()
        seen |= {r[0] for r in events.select("account_id").distinct().collect() if r[0]}
        accounts_file.write_bytes(orjson.dumps(sorted(seen)))
        # Deploys and key origins: this batch's context rows kept beside the state (rewritten on a replay),
        # read back with every earlier batch's.
        context_rows(events).write.mode("overwrite").parquet(str(out / "context" / f"batch={batch_id:09d}"))
        context = spark.read.parquet(str(out / "context")).where(f"batch <= {batch_id}").drop("batch")
        changes, origins, runs_as = workload_context(context.toArrow())
        shared = spark.sparkContext.broadcast(Shared(infos, frozenset(seen | inventory_accounts), peers, 0,
                                                     changes, origins, runs_as))

        def judge_from_state(events_table: pa.Table, state_table: pa.Table) -> pa.Table:
            if events_table.num_rows == 0:
                return OUTPUT_SCHEMA.empty_table()
            state = state_table.column("state")[0].as_py() if state_table.num_rows else None
            return judge_identity(events_table, state, shared.value)

        earlier = [v for v in _state_versions(out) if v < batch_id]
        if earlier:
            states = spark.read.parquet(str(out / "state" / f"batch={earlier[-1]:09d}"))
        elif state_dir is not None:
            states = spark.read.parquet(str(state_dir)).select("identity", "state", "events", "mature",
                                                                "last_event_us", "peer_key")
        else:
            states = spark.createDataFrame([], "identity string, state string, events long, mature boolean, "
                                               "last_event_us long, peer_key string")
        judged = (events_by_identity(events).groupBy("identity").cogroup(states.select("identity", "state")
                                                                   .groupBy("identity"))
                  .applyInArrow(judge_from_state, OUTPUT_DDL)).persist()
        findings = judged.where("kind = 'finding'")
        (findings.select("id", "detector", "severity", "identity", "first_seen", F.col("payload").alias("finding"))
         .write.mode("overwrite").parquet(str(out / "findings" / f"batch={batch_id:09d}")))
        touched = judged.where("kind = 'state'").select("identity", F.col("payload").alias("state"), "events",
                                                        "mature", "last_event_us", "peer_key")
        kept = states.join(touched.select("identity"), "identity", "left_anti")
        # Written last: a batch counts as done (for the next one) once its state version is complete.
        (kept.unionByName(touched).write.mode("overwrite")
         .parquet(str(out / "state" / f"batch={batch_id:09d}")))
        lines = [r[0] for r in findings.select("payload").orderBy("id").collect()]
        target = out / "findings-jsonl" / f"batch-{batch_id:09d}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(line + "\n" for line in lines))
        for old in earlier[:-1]:  # keep the previous version only: what a replay of this batch needs
            import shutil

            shutil.rmtree(out / "state" / f"batch={old:09d}", ignore_errors=True)
        judged.unpersist()
        batch.unpersist()

    trigger = {"availableNow": True} if once else {"processingTime": f"{interval_seconds} seconds"}
    return (parsed.writeStream.foreachBatch(process).trigger(**trigger)
            .option("checkpointLocation", str(checkpoint)).queryName("nhiwatch-stream").start())


def latest_states(out: Path) -> dict[str, str]:
    """Each identity's state after the newest completed micro-batch."""
    import duckdb

    versions = _state_versions(out)
    if not versions:
        return {}
    return dict(duckdb.sql(f"SELECT identity, state FROM read_parquet('{out}/state/batch={versions[-1]:09d}/*.parquet')"
                           ).fetchall())


def findings(out: Path) -> list[dict]:
    return [orjson.loads(line) for path in sorted((out / "findings-jsonl").glob("*.jsonl"))
            for line in path.read_text().splitlines()]
