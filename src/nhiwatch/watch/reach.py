"""`nhiwatch config check --connect`: reach every AWS source and sink with read-only calls."""

from __future__ import annotations

from nhiwatch.watch.config import WatchConfig
from nhiwatch.watch.sources import aws_problem


def reach(config: WatchConfig) -> list[str]:
    from nhiwatch.watch.watcher import _client

    problems: list[str] = []
    for source in config.sources:
        o = source.options
        try:
            if source.type == "s3":
                _client("s3", o.get("region")).list_objects_v2(Bucket=o["bucket"], Prefix=o["prefix"], MaxKeys=1)
            elif source.type == "sqs":
                _client("sqs", o.get("region")).get_queue_attributes(QueueUrl=o["queue_url"],
                                                                      AttributeNames=["QueueArn"])
            elif source.type == "lookup-events":
                for region in o["regions"]:
                    _client("cloudtrail", region).lookup_events(MaxResults=1)
        except Exception as exc:
            code, message = aws_problem(exc)
            problems.append(f"source {source.name}: {code}: {message}")
    for sink in config.sinks:
        if sink.kind == "securityhub":
            try:
                sink.open()
                sink._client.describe_hub()  # type: ignore[attr-defined]
            except Exception as exc:
                code, message = aws_problem(exc)
                problems.append(f"sink {sink.name}: {code}: {message}")
        else:
            try:
                sink.open()
            except Exception as exc:
                problems.append(f"sink {sink.name}: {exc}")
    return problems
