"""Resources a call touched: CloudTrail's resources[] plus the request parameters that name one.

Most management events leave resources[] empty, so the request parameters are where the
bucket, secret, role or instance is. Only parameters that name a resource are mapped; the kind
uses the service's own vocabulary (s3:bucket, iam:role, ...).
"""

from __future__ import annotations

# parameter name -> [(resource type, services it applies to or None for any)]: one name can mean a
# different resource in each service (`name` is an SSM parameter, a trail or an EKS cluster).
_PARAMS: dict[str, list[tuple[str, frozenset[str] | None]]] = {}


def _add(kind: str, names: str, services: str | None = None) -> None:
    scope = frozenset(services.split()) if services else None
    for name in names.split():
        _PARAMS.setdefault(name, []).append((kind, scope))


_add("s3:bucket", "bucketName")
_add("s3:key", "key", "s3")
_add("s3:prefix", "prefix", "s3")
_add("iam:role", "roleName", "iam")
_add("iam:role", "roleArn")
_add("iam:user", "userName", "iam")
_add("iam:group", "groupName", "iam")
_add("iam:policy", "policyArn")
_add("iam:instance-profile", "instanceProfileName", "iam")
_add("iam:access-key", "accessKeyId", "iam")
_add("iam:oidc-provider", "openIDConnectProviderArn", "iam")
_add("iam:saml-provider", "sAMLProviderArn", "iam")
_add("lambda:function", "functionName", "lambda")
_add("lambda:layer", "layerName", "lambda")
_add("secretsmanager:secret", "secretId SecretId", "secretsmanager")
_add("secretsmanager:secret", "secretIdList", "secretsmanager")
_add("ssm:parameter", "name names", "ssm")
_add("ssm:path", "path", "ssm")
_add("ssm:document", "documentName", "ssm")
_add("ssm:target", "target", "ssm")
_add("ec2:instance", "instanceId instanceIds", None)
_add("ec2:snapshot", "snapshotId sourceSnapshotId", "ec2")
_add("ec2:image", "imageId sourceImageId", "ec2")
_add("ec2:volume", "volumeId", "ec2")
_add("ec2:security-group", "groupId", "ec2")
_add("ec2:key-pair", "keyName", "ec2")
_add("ec2:flow-log", "flowLogIds", "ec2")
_add("dynamodb:table", "tableName", "dynamodb")
_add("kms:key", "keyId", "kms")
_add("cloudtrail:trail", "name trailName", "cloudtrail")
_add("logs:log-group", "logGroupName", "logs")
_add("rds:db", "dBInstanceIdentifier", "rds")
_add("rds:cluster", "dBClusterIdentifier", "rds")
_add("rds:snapshot", "dBSnapshotIdentifier dBClusterSnapshotIdentifier", "rds")
_add("ecr:repository", "repositoryName", "ecr")
_add("cloudformation:stack", "stackName", "cloudformation")
_add("sns:topic", "topicArn", "sns")
_add("sqs:queue", "queueUrl", "sqs")
_add("guardduty:detector", "detectorId", "guardduty")
_add("eks:cluster", "clusterName name", "eks")
_add("ecs:cluster", "cluster", "ecs")
_add("ecs:task-definition", "taskDefinition", "ecs")
_add("route53:hosted-zone", "hostedZoneId", "route53")
_add("organizations:account", "accountId", "organizations")

_MAX_RESOURCES = 200  # bulk calls can name thousands; the first ones are enough to baseline


def _values(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def extract_resources(service: str, request_parameters: object, resources: object) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()

    def add(kind: str, name: str) -> None:
        pair = (kind, name)
        if pair not in seen and len(found) < _MAX_RESOURCES:
            seen.add(pair)
            found.append({"type": kind, "name": name})

    if isinstance(resources, list):
        for res in resources:
            if isinstance(res, dict):
                name = res.get("ARN") or res.get("arn") or res.get("ARNPrefix")
                if isinstance(name, str) and name:
                    kind = res.get("type")
                    add(kind if isinstance(kind, str) and kind else "arn", name)

    if isinstance(request_parameters, dict):
        for param, value in request_parameters.items():
            mapped = _PARAMS.get(param)
            if mapped is not None:
                for kind, scope in mapped:
                    if scope is None or service in scope:
                        for name in _values(value):
                            add(kind, name)
                            if kind == "s3:key" and "/" in name:
                                add("s3:prefix", name.rsplit("/", 1)[0] + "/")
            elif param == "instancesSet" and isinstance(value, dict):
                # EC2 wraps instance ids as {"items": [{"instanceId": ...}]}
                items = value.get("items")
                if isinstance(items, list):
                    for item in items:
                        if isinstance(item, dict):
                            for name in _values(item.get("instanceId")):
                                add("ec2:instance", name)
    return found
