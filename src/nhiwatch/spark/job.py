"""`nhiwatch spark analyze`: the embedded engine's stages as a Spark job.

1. read: every object under the paths (local or s3://) as binary files; each task normalizes them
   with the same parser as `nhiwatch ingest` (records that cannot become events are kept, with the
   reason, as the job's quarantine);
2. deduplicate by the event's uid, as the store does;
3. fan each event out to the identities it concerns (the caller; for a successful AssumeRole, also
   the assumed role) and group by identity;
4. per identity, in time order, the engine's step (`nhiwatch.spark.engine`): with --learn-until, a
   learning pass, then peer groups formed across identities (a separate stage on the driver), then
   the judging pass starting from each identity's learned state;
5. write findings (JSON lines, the finding contract, and Parquet), states (Parquet) and the
   quarantine (Parquet), which `nhiwatch spark load` puts into an embedded store.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
import pyarrow as pa

from nhiwatch.core.event import EVENT_SCHEMA
from nhiwatch.detect.runner import CONTEXT_ROWS_WHERE, INBOUND_WHERE, OUTBOUND_WHERE, identity_infos
from nhiwatch.spark.engine import (CONTEXT_COLUMNS, OUTPUT_DDL, OUTPUT_SCHEMA, Shared, judge_identity, peer_profiles,
                                   workload_context)

# The columns the `Ev` projection reads (everything else stays behind after parsing).
EV_COLUMNS = ["event_time", "uid", "event_id", "api", "event_name", "aws_region", "account_id", "source_ip",
              "source_ip_kind", "vpc_endpoint_id", "user_agent", "error_code", "read_only", "session",
              "access_key_id", "principal", "principal_type", "assumed_role_arn", "federation_subject",
              "request_parameters", "resources", "invoked_by"]
# Parsed rows: the event columns (uid as plain binary: Spark has no fixed-size binary) and, for a
# record that could not become an event, where it came from and why.
PARSED_SCHEMA = pa.schema([pa.field(f.name, pa.binary() if f.name == "uid" else f.type) for f in EVENT_SCHEMA]
                          + [pa.field("quarantine_reason", pa.string()), pa.field("quarantine_raw", pa.string())])


@dataclass
class SparkSummary:
    files: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0
    identities: int = 0
    findings: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    partitions: int = 0
    out: str = ""


def spark_session(master: str | None = None, app_name: str = "nhiwatch", partitions: int | None = None):
    """A SparkSession; locally `master` is local[N]. On a cluster, spark-submit supplies the master."""
    import os
    import sys

    from pyspark.sql import SparkSession

    # Locally, Spark's Python workers run this interpreter (the one nhiwatch is installed in); on a
    # cluster, PYSPARK_PYTHON and the shipped package say which.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    builder = (builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.ui.enabled", "false")  # nothing listens on a port unless asked
               # CloudTrail objects are small: pack many into one read task instead of one task per few
               .config("spark.sql.files.openCostInBytes", str(64 << 10))
               .config("spark.sql.files.maxPartitionBytes", str(32 << 20)))
    if partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(partitions))
    return builder.getOrCreate()


def parse_partition(batches):
    """Spark task: (path, content) rows -> parsed rows (events, then quarantined records)."""
    from nhiwatch.ingest.pipeline import parse_items
    from nhiwatch.store.db import now_micros

    for batch in batches:
        entries = [(path, path, bytes(content), None) for path, content in
                   zip(batch.column("path").to_pylist(), batch.column("content").to_pylist())]
        table, bad, _infos = parse_items(entries, now_micros())
        if table is not None and table.num_rows:
            table = table.set_column(table.schema.get_field_index("uid"), "uid",
                                     table.column("uid").cast(pa.binary()))
            nulls = pa.nulls(table.num_rows, pa.string())
            table = table.append_column("quarantine_reason", nulls).append_column("quarantine_raw", nulls)
            yield from table.cast(PARSED_SCHEMA).to_batches()
        if bad:
            columns = {name: pa.nulls(len(bad), PARSED_SCHEMA.field(name).type) for name in PARSED_SCHEMA.names}
            columns["source_file"] = pa.array([b[0] for b in bad], pa.string())
            columns["source_locator"] = pa.array([b[1] for b in bad], pa.string())
            columns["quarantine_reason"] = pa.array([b[2] for b in bad], pa.string())
            columns["quarantine_raw"] = pa.array([b[3] for b in bad], pa.string())
            yield from pa.table(columns, schema=PARSED_SCHEMA).to_batches()


def read_parsed(spark, paths: list[str]):
    """Parsed rows (events and quarantined records, PARSED_SCHEMA) of every file under the paths."""
    from pyspark.sql.pandas.types import from_arrow_schema

    files = (spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(paths)
             .select("path", "content"))
    return files.mapInArrow(parse_partition, from_arrow_schema(PARSED_SCHEMA))


def context_rows(events):
    """The few rows deploys and key origins are read from: CONTEXT_ROWS_WHERE, and one row per role."""
    from pyspark.sql import functions as F

    roles = events.where("principal_type = 'role'").select("principal", "principal_account").distinct()
    return events.where(CONTEXT_ROWS_WHERE).select(*CONTEXT_COLUMNS).unionByName(roles.select(
        *[F.col(c) if c in ("principal", "principal_account") else
          (F.lit("role") if c == "principal_type" else F.lit(None)).cast(
              "timestamp" if c == "event_time" else "string").alias(c) for c in CONTEXT_COLUMNS]))


def events_by_identity(events):
    """Each event once per identity it concerns, with the columns the engine reads."""
    from pyspark.sql import functions as F

    outbound = events.where(OUTBOUND_WHERE).select(F.col("principal").alias("identity"),
                                                   F.lit(False).alias("inbound"), *EV_COLUMNS)
    inbound = events.where(INBOUND_WHERE).select(F.col("assumed_role_arn").alias("identity"),
                                                 F.lit(True).alias("inbound"), *EV_COLUMNS)
    return outbound.unionByName(inbound)


def analyze(spark, paths: list[str], out: Path | str, *, inventory_home: Path | None = None,
            learn_until: datetime | None = None, partitions: int | None = None) -> SparkSummary:
    """`out` is a local folder, or on a cluster any URL Spark writes to (s3a://, hdfs://, abfss://...)."""
    from pyspark.sql import functions as F

    remote = "://" in str(out)
    summary = SparkSummary(out=str(out))
    clock = time.perf_counter()
    if not remote:
        out = Path(out)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
    base = str(out).rstrip("/")
    infos = {}
    if inventory_home is not None:
        from nhiwatch.store.db import Store

        with Store(inventory_home, read_only=True) as store:
            infos = identity_infos(store)
    parsed = read_parsed(spark, paths).persist()
    quarantine = parsed.where("quarantine_reason IS NOT NULL").select(
        "source_file", "source_locator", "quarantine_reason", "quarantine_raw")
    all_events = parsed.where("quarantine_reason IS NULL").drop("quarantine_reason", "quarantine_raw")
    read = all_events.count()
    events = all_events.dropDuplicates(["uid"]).persist()
    summary.events = events.count()
    summary.duplicates = read - summary.events
    summary.quarantined = quarantine.count()
    quarantine.write.mode("overwrite").parquet(f"{base}/quarantine")
    summary.files = parsed.select("source_file").distinct().count()
    summary.seconds["read"] = round(time.perf_counter() - clock, 2)

    # Known accounts: every account in the events and in the inventory (what the embedded runner knows).
    accounts = {r[0] for r in events.select("account_id").distinct().collect() if r[0]}
    known_accounts = frozenset(accounts | {i.account_id for i in infos.values() if i.account_id})
    learn_until_us = int(learn_until.timestamp() * 1e6) if learn_until else None
    # Deploys and key origins come from a handful of rows: gathered on the driver like known accounts.
    changes, origins, runs_as = workload_context(context_rows(events).toArrow())
    rows = events_by_identity(events)
    if partitions:
        rows = rows.repartition(partitions, "identity")
    summary.partitions = rows.rdd.getNumPartitions() if partitions else int(
        spark.conf.get("spark.sql.shuffle.partitions"))
    clock = time.perf_counter()

    def run_pass(selected, shared_value, states=None):
        shared = spark.sparkContext.broadcast(shared_value)

        def one_identity(table: pa.Table) -> pa.Table:
            return judge_identity(table, None, shared.value)

        def one_identity_from_state(events_table: pa.Table, state_table: pa.Table) -> pa.Table:
            if events_table.num_rows == 0:
                return OUTPUT_SCHEMA.empty_table()
            state = state_table.column("payload")[0].as_py() if state_table.num_rows else None
            return judge_identity(events_table, state, shared.value)

        if states is None:
            return selected.groupBy("identity").applyInArrow(one_identity, OUTPUT_DDL)
        learned = states.where("kind = 'state'").select("identity", "payload")
        return (selected.groupBy("identity").cogroup(learned.groupBy("identity"))
                .applyInArrow(one_identity_from_state, OUTPUT_DDL))

    if learn_until_us is None:
        results = run_pass(rows, Shared(infos, known_accounts, {}, 0, changes, origins, runs_as)).persist()
        final = results
    else:
        # Learning pass: the events before learn_until teach every identity (the engine raises nothing
        # on them). Its states give the peer groups, then the judging pass starts from them.
        early = rows.where(F.col("event_time") < F.lit(learn_until).cast("timestamp"))
        late = rows.where(F.col("event_time") >= F.lit(learn_until).cast("timestamp"))
        learned = run_pass(early, Shared(infos, known_accounts, {}, learn_until_us, changes, origins, runs_as)).persist()
        peer_states = learned.where("kind = 'state' AND mature").select("peer_key", "payload").collect()
        peers = peer_profiles([(r[0], r[1]) for r in peer_states])
        summary.seconds["learn"] = round(time.perf_counter() - clock, 2)
        judged = run_pass(late, Shared(infos, known_accounts, peers, learn_until_us, changes, origins, runs_as), states=learned).persist()
        # An identity with no event after learn_until keeps its learned state; findings come from both passes.
        judged_ids = judged.where("kind = 'state'").select("identity")
        kept = learned.where("kind = 'state'").join(judged_ids, "identity", "left_anti")
        final = (learned.where("kind = 'finding'").unionByName(judged))
        final = final.unionByName(kept.select(*judged.columns)).persist()
    findings = final.where("kind = 'finding'")
    states = final.where("kind = 'state'").select("identity", F.col("payload").alias("state"), "events", "mature",
                                                  "last_event_us", "peer_key")
    states.write.mode("overwrite").parquet(f"{base}/state")
    findings.select("id", "detector", "severity", "identity", "first_seen", F.col("payload").alias("finding")
                    ).write.mode("overwrite").parquet(f"{base}/findings")
    summary.by_severity = {r[0]: r[1] for r in findings.groupBy("severity").count().collect()}
    summary.findings = sum(summary.by_severity.values())
    summary.identities = states.count()
    summary.seconds["detect"] = round(time.perf_counter() - clock, 2)
    if remote:
        # On a cluster the driver's disk is not where results go: Spark writes the JSON lines too.
        findings.orderBy("id").select("payload").coalesce(1).write.mode("overwrite").text(f"{base}/findings-jsonl")
        spark.createDataFrame([(orjson.dumps(vars(summary)).decode(),)], "value string").coalesce(1) \
            .write.mode("overwrite").text(f"{base}/summary")
    else:
        with (out / "findings.jsonl").open("w") as sink:
            for row in findings.orderBy("id").select("payload").toLocalIterator():
                sink.write(row["payload"] + "\n")
        (out / "summary.json").write_bytes(orjson.dumps(vars(summary), option=orjson.OPT_INDENT_2))
    return summary


def load(store, out: Path) -> dict:
    """Put a Spark run's states and findings into an embedded store (profiles replaced, findings added
    once), so the dashboard, correlation and response work on them."""
    import duckdb  # noqa: F401 - the store's connection reads the Parquet

    state_glob, finding_glob = str(out / "state" / "*.parquet"), str(out / "findings" / "*.parquet")
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        profiles = con.execute(f"""INSERT OR REPLACE INTO profiles
            SELECT identity, now(), last_event_us, events, mature, state FROM read_parquet('{state_glob}')""").fetchall()
        added = con.execute(f"""INSERT INTO findings (id, detector, severity, score, identity, account_id, first_seen,
                                                      last_seen, status, finding)
            SELECT id, detector, severity, CAST(json_extract(finding, '$.score') AS INTEGER), identity,
                   json_extract_string(finding, '$.identity.account_id'), first_seen,
                   json_extract_string(finding, '$.last_seen'), 'open', finding
            FROM read_parquet('{finding_glob}') WHERE id NOT IN (SELECT id FROM findings)""").fetchall()
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return {"profiles": int(profiles[0][0]) if profiles else 0, "findings_added": int(added[0][0]) if added else 0}
