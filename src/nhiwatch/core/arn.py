"""What an ARN says about where it lives: its partition and account.

AWS has more partitions than `aws` (GovCloud, China, the isolated regions); outputs that name a
resource must carry the partition its ARN names, or consumers there reject or misfile it."""

from __future__ import annotations

import re

DEFAULT_PARTITION = "aws"
# arn:PARTITION:service:region:account:resource; partitions are lower-case letters and hyphens.
_ARN = re.compile(r"^arn:(aws[a-z-]*):([^:]*):([^:]*):(\d{12})?:")


def partition_of(arn: str | None) -> str:
    """The partition an ARN names (`aws`, `aws-us-gov`, `aws-cn`, ...); `aws` when it is no ARN."""
    match = _ARN.match(arn or "")
    return match.group(1) if match else DEFAULT_PARTITION


def account_of(arn: str | None) -> str | None:
    """The 12-digit account an ARN names, None when it names none (S3 buckets) or is no ARN."""
    match = _ARN.match(arn or "")
    return match.group(4) if match and match.group(4) else None
