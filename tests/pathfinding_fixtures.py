"""A test account built from the pathfinding.cloud catalogue (../shared/data/pathfinding), and the
measurement of nhiwatch's privilege-escalation verdicts on it.

For every one of the catalogue's paths the account holds:

- a principal that CAN exploit it: exactly the path's required permissions (read from the path's YAML),
  written in a realistic form that rotates among an inline policy, a customer-managed policy, a group's
  inline or managed policy, action wildcards (`iam:Pass*`), grants scoped to the target's ARN, policy
  variables (`${aws:username}`) and conditions the principal meets; plus the targets the path needs (an
  admin user, group or role, a privileged role that trusts the path's service, the existing resources
  its prerequisites name);
- a look-alike that CANNOT: the same grants with one thing in the way, rotating among a required
  permission missing, an explicit Deny, a permissions boundary without one step, PassRole or the
  target-scoped grant pointed at a harmless role/user/group, a condition it cannot meet
  (`iam:PassedToService` naming another service, a principal tag it lacks and cannot set, MFA on a role
  only a service can assume) and, for the paths that end in `sts:AssumeRole`, a target that does not
  trust it;
- chains of one and two `sts:AssumeRole` hops to admin (permission on the caller's side and trust on
  the role's side) and look-alike chains with one side missing.

Names are drawn from one shuffled pool of workload names, so a name says nothing about the answer:
the manifest holds the truth. The account is our own data, written from the paths' facts; the YAMLs
(DataDog's pathfinding.cloud, Apache-2.0) are read at build time, never copied.

    python tests/pathfinding_fixtures.py OUTDIR   # writes authorization-details.json,
                                                  # credential-report.csv and manifest.json
"""

from __future__ import annotations

import copy
import csv
import fnmatch
import io
import json
import random
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
PATHS_DIR = REPO.parent / "shared" / "data" / "pathfinding" / "paths"
IAM_VULNERABLE = REPO.parent / "shared" / "data" / "iam" / "cloudsplaining" / "example.json"

ACCOUNT = "314159265358"
REGION = "us-east-1"
MGMT_ACCOUNT = "999988887777"   # the organisation's management account (trusted by OrganizationAccountAccessRole)
CI_ACCOUNT = "444455556666"     # an external CI vendor
CREATED = "2025-03-03 09:00:00+00:00"
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
CATEGORIES = ("self-escalation", "principal-access", "new-passrole", "existing-passrole", "credential-access",
              "multi-hop")

# -- the catalogue -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogPath:
    id: str
    name: str
    category: str
    required: tuple[str, ...]
    file: str


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=4)
def _load_paths(paths_dir: Path) -> dict[str, CatalogPath]:
    found = {}
    for file in sorted(paths_dir.glob("*/*.yaml")):
        doc = yaml.load(file.read_text(), Loader=_LOADER)
        required = tuple(p["permission"] for p in doc["permissions"]["required"])
        found[doc["id"]] = CatalogPath(doc["id"], doc["name"], doc["category"], required,
                                       str(file.relative_to(paths_dir)))
    return found


def load_paths(paths_dir: Path = PATHS_DIR) -> dict[str, CatalogPath]:
    """The catalogue's paths by id: name, category and required permissions, read from the YAMLs."""
    return dict(_load_paths(paths_dir))


# -- how each path's principals are written ----------------------------------------------------
#
# res: action -> resource token (default "*"). Tokens:
#   *                       every resource
#   self / self-group / self-policy   the principal's own ARN, the group it is in, the managed policy
#                           that carries the grant
#   var:user                arn:aws:iam::ACCOUNT:user/${aws:username}
#   svc:<service principal> the privileged role that trusts that service (admin)
#   harmless:<service principal>  a role trusting that service with harmless permissions
#   user:/role:/group:<name>      a named entity of the environment
#   low-role:<name>:<trust>  a non-admin role (trust: self = the principal itself, root = the account,
#                           or a service short name), created on first use with a managed policy
#                           <name>-access; low-policy:<name>:<trust> is that policy
#   low-user:<name>:<keys>   a non-admin user with that many access keys
#   res:<service>:<rest>     arn:aws:<service>:REGION:ACCOUNT:<rest>


@dataclass(frozen=True)
class Look:
    """What stops the look-alike. kind: missing | deny | boundary | retarget | trust | passed-to | tag | mfa."""
    kind: str
    action: str | None = None
    to: str | None = None              # retarget: the harmless target of `action`
    res: dict = field(default_factory=dict)  # resource overrides for the look-alike
    service: str | None = None         # passed-to: the service named instead
    tag: tuple[str, str] | None = None  # tag: (key, value) the condition requires
    has: dict = field(default_factory=dict)  # tag: the look-alike's own tags
    why: str = ""


@dataclass(frozen=True)
class Spec:
    actor: str                         # user | role
    attach: str                        # inline | managed | group | group-managed
    look: Look
    res: dict = field(default_factory=dict)
    wildcards: dict = field(default_factory=dict)  # action -> the pattern written instead
    cond: dict = field(default_factory=dict)       # action -> Condition block the can-principal meets
    tags: dict = field(default_factory=dict)
    member: bool = False               # the principal is in a group of its own (for the self-group paths)
    also: tuple[str, ...] = ()         # other catalogue paths the can-principal also exploits


def L(kind: str, action: str | None = None, **kw) -> Look:
    return Look(kind, action, **kw)


def S(actor: str, attach: str, look: Look, **kw) -> Spec:
    return Spec(actor, attach, look, **kw)


PASS = "iam:PassRole"
SP = {s: f"{s}.amazonaws.com" for s in ("lambda", "ec2", "ecs-tasks", "glue", "sagemaker", "codebuild",
                                        "cloudformation", "bedrock-agentcore", "datapipeline")}
SP["apprunner"] = "tasks.apprunner.amazonaws.com"
INSTANCE = "res:ec2:instance/i-0b7e4c2a9d1f36058"
NOTEBOOK = "res:sagemaker:notebook-instance/ml-research"
STACK = "res:cloudformation:stack/network-baseline/*"
FUNCTION = "res:lambda:function:invoice-sync"


def passed_to(service: str) -> dict:
    return {"StringEquals": {"iam:PassedToService": service}}


def principal_tag(key: str, value: str) -> dict:
    return {"StringEquals": {f"aws:PrincipalTag/{key}": value}}


SPECS: dict[str, Spec] = {
    # -- self-escalation --
    "iam-001": S("role", "managed", L("boundary", "iam:CreatePolicyVersion"),
                 res={"iam:CreatePolicyVersion": "self-policy"}),
    "iam-005": S("role", "inline", L("deny", "iam:PutRolePolicy"),
                 res={"iam:PutRolePolicy": "self"}, wildcards={"iam:PutRolePolicy": "iam:PutRole*"}),
    "iam-007": S("user", "inline", L("tag", "iam:PutUserPolicy", tag=("iam-self-service", "enabled")),
                 res={"iam:PutUserPolicy": "var:user"}),
    "iam-008": S("user", "group", L("boundary", "iam:AttachUserPolicy"), res={"iam:AttachUserPolicy": "var:user"}),
    "iam-009": S("role", "managed", L("retarget", "iam:AttachRolePolicy", to="low-role:batch-worker-reports:ec2",
                                      why="AttachRolePolicy on another role, which it can neither assume nor pass")),
    "iam-010": S("user", "group", L("deny", "iam:AttachGroupPolicy"), res={"iam:AttachGroupPolicy": "self-group"}),
    "iam-011": S("user", "managed", L("retarget", "iam:PutGroupPolicy", to="group:auditors",
                                      why="PutGroupPolicy on a group it is not a member of"),
                 res={"iam:PutGroupPolicy": "self-group"}, wildcards={"iam:PutGroupPolicy": "iam:PutGroup*"},
                 member=True),
    "iam-013": S("user", "inline", L("retarget", "iam:AddUserToGroup", to="group:readonly-viewers",
                                     why="AddUserToGroup only on a read-only group"),
                 res={"iam:AddUserToGroup": "group:platform-admins"}),
    # -- principal-access --
    "iam-002": S("user", "managed", L("retarget", "iam:CreateAccessKey", to="var:user",
                                      why="CreateAccessKey on its own user only (${aws:username})"),
                 res={"iam:CreateAccessKey": "user:ops-admin"}),
    "iam-003": S("role", "inline", L("boundary", "iam:CreateAccessKey"),
                 res={"iam:CreateAccessKey": "user:legacy-deploy", "iam:DeleteAccessKey": "user:legacy-deploy"},
                 wildcards={"iam:CreateAccessKey": "iam:*AccessKey", "iam:DeleteAccessKey": "iam:*AccessKey"}),
    "iam-004": S("user", "group", L("retarget", "iam:CreateLoginProfile", to="low-user:metrics-collector:0",
                                    why="CreateLoginProfile only on a user without privileges"),
                 res={"iam:CreateLoginProfile": "user:emergency-access"}),
    "iam-006": S("role", "managed", L("deny", "iam:UpdateLoginProfile")),
    "iam-012": S("role", "inline", L("retarget", "iam:UpdateAssumeRolePolicy", to="low-role:cost-explorer-reader:lambda",
                                     why="UpdateAssumeRolePolicy only on a role without privileges")),
    "iam-014": S("user", "managed", L("trust", res={"iam:AttachRolePolicy": "low-role:reporting-export:lambda",
                                                    "sts:AssumeRole": "low-role:reporting-export:lambda"},
                                      why="the target role does not trust it (trusts lambda.amazonaws.com)"),
                 res={"iam:AttachRolePolicy": "low-role:reporting-readonly:self",
                      "sts:AssumeRole": "low-role:reporting-readonly:self"}),
    "iam-015": S("role", "inline", L("missing", "iam:CreateAccessKey",
                                     res={"iam:AttachUserPolicy": "low-user:status-api-poller:0"}),
                 res={"iam:AttachUserPolicy": "low-user:metrics-exporter:0",
                      "iam:CreateAccessKey": "low-user:metrics-exporter:0"}),
    "iam-016": S("user", "group-managed", L("missing", "sts:AssumeRole",
                                            res={"iam:CreatePolicyVersion": "low-policy:bi-extract:root"},
                                            why="the role trusts the account, so the caller needs sts:AssumeRole"),
                 res={"iam:CreatePolicyVersion": "low-policy:bi-query:self", "sts:AssumeRole": "low-role:bi-query:self"}),
    "iam-017": S("role", "inline", L("deny", "iam:PutRolePolicy", res={"iam:PutRolePolicy": "low-role:audit-forwarder:self",
                                                                       "sts:AssumeRole": "low-role:audit-forwarder:self"}),
                 res={"iam:PutRolePolicy": "low-role:audit-collector:self", "sts:AssumeRole": "low-role:audit-collector:self"},
                 wildcards={"iam:PutRolePolicy": "iam:PutRole*"}),
    "iam-018": S("user", "inline", L("boundary", "iam:CreateAccessKey",
                                     res={"iam:PutUserPolicy": "low-user:uptime-bot:1",
                                          "iam:CreateAccessKey": "low-user:uptime-bot:1"}),
                 res={"iam:PutUserPolicy": "low-user:status-page-bot:1", "iam:CreateAccessKey": "low-user:status-page-bot:1"}),
    "iam-019": S("role", "managed", L("missing", "iam:AttachRolePolicy",
                                      res={"iam:UpdateAssumeRolePolicy": "low-role:batch-reporting:ec2"}),
                 res={"iam:AttachRolePolicy": "low-role:batch-scheduler:ec2",
                      "iam:UpdateAssumeRolePolicy": "low-role:batch-scheduler:ec2"}),
    "iam-020": S("user", "inline", L("retarget", res={"iam:CreatePolicyVersion": "low-policy:etl-reader:lambda",
                                                      "iam:UpdateAssumeRolePolicy": "low-role:etl-staging:lambda"},
                                     why="the policy it can rewrite is not attached to the role whose trust it can change"),
                 res={"iam:CreatePolicyVersion": "low-policy:etl-worker:lambda",
                      "iam:UpdateAssumeRolePolicy": "low-role:etl-worker:lambda"}),
    "iam-021": S("role", "inline", L("tag", "iam:UpdateAssumeRolePolicy", tag=("iam-admin", "true"),
                                     res={"iam:PutRolePolicy": "low-role:cache-purger:lambda",
                                          "iam:UpdateAssumeRolePolicy": "low-role:cache-purger:lambda"}),
                 res={"iam:PutRolePolicy": "low-role:cache-warmer:lambda",
                      "iam:UpdateAssumeRolePolicy": "low-role:cache-warmer:lambda"}),
    "sts-001": S("role", "managed", L("trust", res={"sts:AssumeRole": "role:dr-restore"},
                                      why="the admin role trusts only backup.amazonaws.com"),
                 res={"sts:AssumeRole": "role:ops-breakglass"}),
    # -- new-passrole --
    "apprunner-001": S("role", "inline", L("passed-to", PASS, service=SP["ecs-tasks"])),
    "bedrock-001": S("user", "managed", L("retarget", PASS, to="harmless:" + SP["bedrock-agentcore"]),
                     res={PASS: "svc:" + SP["bedrock-agentcore"],
                          "bedrock-agentcore:StartCodeInterpreterSession": "res:bedrock-agentcore:code-interpreter/scratch_*",
                          "bedrock-agentcore:InvokeCodeInterpreter": "res:bedrock-agentcore:code-interpreter/scratch_*"}),
    "cloudformation-001": S("role", "inline", L("boundary", PASS),
                            res={PASS: "svc:" + SP["cloudformation"],
                                 "cloudformation:CreateStack": "res:cloudformation:stack/app-*/*"}),
    "cloudformation-003": S("user", "group", L("missing", "cloudformation:CreateStackInstances"),
                            res={PASS: "role:AWSCloudFormationStackSetAdministrationRole"}),
    "cloudformation-004": S("role", "inline", L("deny", "cloudformation:UpdateStackSet"),
                            res={PASS: "role:AWSCloudFormationStackSetAdministrationRole",
                                 "cloudformation:UpdateStackSet": "res:cloudformation:stackset/org-baseline:*"}),
    "cloudformation-005": S("user", "managed", L("missing", "cloudformation:ExecuteChangeSet"),
                            res={"cloudformation:CreateChangeSet": STACK, "cloudformation:ExecuteChangeSet": STACK}),
    "codebuild-001": S("role", "inline", L("passed-to", PASS, service="codepipeline.amazonaws.com"),
                       res={PASS: "svc:" + SP["codebuild"], "codebuild:CreateProject": "res:codebuild:project/sandbox-*",
                            "codebuild:StartBuild": "res:codebuild:project/sandbox-*"},
                       cond={PASS: passed_to(SP["codebuild"])}),
    "codebuild-004": S("user", "group-managed", L("retarget", PASS, to="harmless:" + SP["codebuild"]),
                       res={PASS: "svc:" + SP["codebuild"], "codebuild:CreateProject": "res:codebuild:project/sandbox-*",
                            "codebuild:StartBuildBatch": "res:codebuild:project/sandbox-*"}),
    "datapipeline-001": S("role", "managed", L("missing", "datapipeline:ActivatePipeline")),
    "ec2-001": S("user", "inline", L("retarget", PASS, to="harmless:" + SP["ec2"])),
    "ec2-003": S("role", "managed", L("passed-to", PASS, service=SP["lambda"]), res={PASS: "svc:" + SP["ec2"]},
                 wildcards={PASS: "iam:Pass*"}),
    "ecs-001": S("role", "inline", L("retarget", PASS, to="harmless:" + SP["ecs-tasks"]),
                 cond={PASS: passed_to(SP["ecs-tasks"])}, also=("ecs-003",)),
    "ecs-002": S("user", "group", L("boundary", PASS), also=("ecs-004",)),
    "ecs-003": S("role", "managed", L("missing", "ecs:CreateService")),
    "ecs-004": S("role", "inline", L("deny", "ecs:RunTask"),
                 res={PASS: "svc:" + SP["ecs-tasks"], "ecs:RunTask": "res:ecs:task-definition/batch-*:*"}),
    "ecs-005": S("user", "managed", L("tag", "ecs:StartTask", tag=("team", "ml-platform"), has={"team": "web"}),
                 cond={"ecs:StartTask": principal_tag("team", "ml-platform")},
                 tags={"team": "ml-platform"}),
    "glue-001": S("role", "inline", L("passed-to", PASS, service=SP["sagemaker"])),
    "glue-003": S("user", "managed", L("missing", "glue:StartJobRun")),
    "glue-004": S("role", "managed", L("boundary", "glue:CreateTrigger"), res={PASS: "svc:" + SP["glue"]},
                  wildcards={PASS: "iam:Pass*"}),
    "glue-005": S("role", "inline", L("deny", PASS),
                  res={PASS: "svc:" + SP["glue"], "glue:UpdateJob": "res:glue:job/nightly-etl",
                       "glue:StartJobRun": "res:glue:job/nightly-etl"}),
    "glue-006": S("user", "group", L("retarget", PASS, to="harmless:" + SP["glue"]),
                  res={PASS: "svc:" + SP["glue"], "glue:UpdateJob": "res:glue:job/nightly-etl",
                       "glue:CreateTrigger": "res:glue:trigger/*"}),
    "lambda-001": S("role", "inline", L("passed-to", PASS, service=SP["ec2"]),
                    res={PASS: "svc:" + SP["lambda"], "lambda:CreateFunction": "res:lambda:function:ingest-*",
                         "lambda:InvokeFunction": "res:lambda:function:ingest-*"}),
    "lambda-002": S("user", "managed", L("missing", "lambda:CreateEventSourceMapping")),
    "lambda-006": S("role", "managed", L("boundary", PASS),
                    wildcards={"lambda:AddPermission": "lambda:*Permission"}),
    "sagemaker-001": S("role", "inline", L("retarget", PASS, to="harmless:" + SP["sagemaker"])),
    "sagemaker-002": S("user", "group", L("deny", "sagemaker:CreateTrainingJob")),
    "sagemaker-003": S("role", "managed", L("mfa", PASS)),
    # -- existing-passrole --
    "apprunner-002": S("role", "inline", L("deny", "apprunner:UpdateService"),
                       res={"apprunner:UpdateService": "res:apprunner:service/storefront-api/*"}),
    "bedrock-002": S("user", "managed", L("missing", "bedrock-agentcore:InvokeCodeInterpreter"),
                     res={"bedrock-agentcore:StartCodeInterpreterSession": "res:bedrock-agentcore:code-interpreter/analytics_ci-*",
                          "bedrock-agentcore:InvokeCodeInterpreter": "res:bedrock-agentcore:code-interpreter/analytics_ci-*"}),
    "cloudformation-002": S("role", "managed", L("mfa", "cloudformation:UpdateStack"),
                            res={"cloudformation:UpdateStack": STACK}),
    "codebuild-002": S("role", "inline", L("boundary", "codebuild:StartBuild"),
                       res={"codebuild:StartBuild": "res:codebuild:project/release-pipeline"}),
    "codebuild-003": S("user", "group", L("deny", "codebuild:StartBuildBatch")),
    "ec2-002": S("user", "inline", L("missing", "ec2:ModifyInstanceAttribute")),
    "ec2-004": S("role", "inline", L("deny", "ec2:ModifyLaunchTemplate"),
                 res={"ec2:CreateLaunchTemplateVersion": "res:ec2:launch-template/lt-0c1d2e3f4a5b6c7d8",
                      "ec2:ModifyLaunchTemplate": "res:ec2:launch-template/lt-0c1d2e3f4a5b6c7d8"}),
    "ec2instanceconnect-003": S("role", "managed", L("tag", "ec2-instance-connect:SendSSHPublicKey", tag=("team", "sre"),
                                                     has={"team": "web"}),
                                cond={"ec2-instance-connect:SendSSHPublicKey": principal_tag("team", "sre")},
                                tags={"team": "sre"}),
    "glue-002": S("role", "managed", L("boundary", "glue:UpdateDevEndpoint")),
    "lambda-003": S("user", "managed", L("deny", "lambda:UpdateFunctionCode"), res={"lambda:UpdateFunctionCode": FUNCTION}),
    "lambda-004": S("role", "inline", L("boundary", "lambda:UpdateFunctionCode"), also=("lambda-003",)),
    "lambda-005": S("role", "managed", L("tag", "lambda:UpdateFunctionCode", tag=("team", "billing"), has={"team": "web"}),
                    res={"lambda:UpdateFunctionCode": FUNCTION, "lambda:AddPermission": FUNCTION},
                    cond={"lambda:UpdateFunctionCode": principal_tag("team", "billing")}, tags={"team": "billing"},
                    also=("lambda-003",)),
    "sagemaker-004": S("user", "group", L("deny", "sagemaker:CreatePresignedNotebookInstanceUrl")),
    "sagemaker-005": S("role", "inline", L("missing", "sagemaker:UpdateNotebookInstance"),
                       res={"sagemaker:StopNotebookInstance": NOTEBOOK, "sagemaker:UpdateNotebookInstance": NOTEBOOK,
                            "sagemaker:StartNotebookInstance": NOTEBOOK},
                       wildcards={a: "sagemaker:*NotebookInstance" for a in (
                           "sagemaker:StopNotebookInstance", "sagemaker:UpdateNotebookInstance",
                           "sagemaker:StartNotebookInstance")}),
    "ssm-001": S("role", "managed", L("mfa", "ssm:StartSession"),
                 res={"ssm:StartSession": [INSTANCE, "res-global:ssm:document/SSM-SessionManagerRunShell"]}),
    "ssm-002": S("user", "inline", L("boundary", "ssm:SendCommand")),
}

LOOK_WORDS = {
    "missing": "one required permission missing",
    "deny": "an explicit Deny of one step",
    "boundary": "a permissions boundary without one step",
    "retarget": "the target-scoped grant points at a harmless target",
    "trust": "the role's trust policy does not let it in",
    "passed-to": "iam:PassedToService names another service",
    "tag": "a principal tag it lacks (and cannot set)",
    "mfa": "MFA required on a role only a service can assume",
}

# -- names -------------------------------------------------------------------------------------

WORKLOADS = ("billing", "orders", "payments", "search", "catalog", "ledger", "reports", "inventory",
             "shipping", "notify", "identity", "analytics", "recs", "fraud", "pricing", "checkout", "media",
             "backup", "crm", "geo", "tax", "loyalty", "returns", "warehouse", "forecast", "pager", "docs",
             "translate", "images", "video", "chat", "feeds", "ads", "support", "ratings", "quotes", "vendor",
             "payroll", "hr", "reconcile", "exports", "imports", "webhooks", "cdn", "dns", "mail", "sms",
             "queue", "schema", "events", "sessions", "coupons", "wallet", "kyc", "ledgerx", "telemetry",
             "thumbnails", "clickstream", "partner")
USER_SUFFIXES = ("-ci", "-sync", "-bot", "-integration", "-uploader", "-deployer", "-automation", "-svc")
ROLE_SUFFIXES = ("-lambda", "-task", "-worker", "-runner", "-etl", "-job", "-processor", "-service")
FORBIDDEN_WORDS = ("privesc", "safe", "escalat", "vuln", "exploit", "lookalike", "look-alike", "cannot", "harmless")


class NamePool:
    def __init__(self, seed: int, taken: set[str]):
        rng = random.Random(seed)
        self.pools = {}
        for kind, suffixes in (("user", USER_SUFFIXES), ("role", ROLE_SUFFIXES)):
            names = [w + s for w in WORKLOADS for s in suffixes]
            rng.shuffle(names)
            self.pools[kind] = names
        self.taken = taken

    def take(self, kind: str) -> str:
        pool = self.pools[kind]
        while True:
            name = pool.pop()
            if name not in self.taken:
                self.taken.add(name)
                return name


# -- the account -------------------------------------------------------------------------------


def iam_arn(kind: str, name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:{kind}/{name}"


def unique_id(prefix: str, name: str) -> str:
    digest = 0
    for ch in name:
        digest = (digest * 131 + ord(ch)) % (36 ** 16)
    chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    text = ""
    while len(text) < 17:
        text += chars[digest % 32]
        digest = digest // 32 + len(text) * 7919
    return prefix + text


def trust_service(*services: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": list(services) if len(services) > 1 else services[0]},
         "Action": "sts:AssumeRole"}]}


def trust_aws(principal: str, condition: dict | None = None) -> dict:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def document(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions, resources="*", condition: dict | None = None, sid: str | None = None, effect: str = "Allow") -> dict:
    statement: dict[str, Any] = {}
    if sid:
        statement["Sid"] = sid
    statement["Effect"] = effect
    statement["Action"] = actions if isinstance(actions, str) or len(actions) > 1 else actions[0]
    statement["Resource"] = resources if isinstance(resources, str) or len(resources) > 1 else resources[0]
    if condition:
        statement["Condition"] = condition
    return statement


HARMLESS_STATEMENT = allow(["logs:CreateLogStream", "logs:PutLogEvents"], "arn:aws:logs:*:*:*", sid="Logs")
READ_STATEMENT = allow(["cloudwatch:GetMetricData", "cloudwatch:ListMetrics"], "*", sid="ReadMetrics")


class Account:
    """An authorization-details export, a credential report and the manifest, built together."""

    def __init__(self):
        self.users: dict[str, dict] = {}
        self.roles: dict[str, dict] = {}
        self.groups: dict[str, dict] = {}
        self.policies: dict[str, dict] = {}       # arn -> entry
        self.keys: dict[str, tuple[int, bool]] = {}  # user -> (access keys, password)
        self.labels: dict[str, dict] = {}         # arn -> manifest entry
        self.resources: list[dict] = []

    # entities
    def policy(self, name: str, doc: dict, description: str = "") -> str:
        arn = iam_arn("policy", name)
        if arn not in self.policies:
            self.policies[arn] = {
                "PolicyName": name, "PolicyId": unique_id("ANPA", name), "Arn": arn, "Path": "/",
                "DefaultVersionId": "v1", "AttachmentCount": 0, "PermissionsBoundaryUsageCount": 0,
                "IsAttachable": True, "CreateDate": CREATED, "UpdateDate": CREATED,
                "PolicyVersionList": [{"Document": doc, "VersionId": "v1", "IsDefaultVersion": True,
                                       "CreateDate": CREATED}]}
            if description:
                self.policies[arn]["Description"] = description
        return arn

    def aws_policy(self, arn: str, doc: dict) -> str:
        if arn not in self.policies:
            self.policies[arn] = {
                "PolicyName": arn.rsplit("/", 1)[-1], "PolicyId": unique_id("ANPA", arn), "Arn": arn,
                "Path": "/", "DefaultVersionId": "v1", "AttachmentCount": 0, "PermissionsBoundaryUsageCount": 0,
                "IsAttachable": True, "CreateDate": "2015-02-06 18:39:46+00:00",
                "UpdateDate": "2015-02-06 18:39:46+00:00",
                "PolicyVersionList": [{"Document": doc, "VersionId": "v1", "IsDefaultVersion": True,
                                       "CreateDate": "2015-02-06 18:39:46+00:00"}]}
        return arn

    def _attach(self, entry: dict, policy_arn: str) -> None:
        entry["AttachedManagedPolicies"].append({"PolicyName": policy_arn.rsplit("/", 1)[-1], "PolicyArn": policy_arn})
        self.policies[policy_arn]["AttachmentCount"] += 1

    def _boundary(self, entry: dict, policy_arn: str) -> None:
        entry["PermissionsBoundary"] = {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": policy_arn}
        self.policies[policy_arn]["PermissionsBoundaryUsageCount"] += 1

    def user(self, name: str, inline: dict | None = None, managed: tuple[str, ...] = (), groups: tuple[str, ...] = (),
             tags: dict | None = None, keys: int = 1, password: bool = False) -> str:
        assert name not in self.users, name
        entry = {"Path": "/", "UserName": name, "UserId": unique_id("AIDA", name), "Arn": iam_arn("user", name),
                 "CreateDate": CREATED, "UserPolicyList": [], "GroupList": list(groups),
                 "AttachedManagedPolicies": [], "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}
        for policy_name, doc in (inline or {}).items():
            entry["UserPolicyList"].append({"PolicyName": policy_name, "PolicyDocument": doc})
        for arn in managed:
            self._attach(entry, arn)
        self.users[name] = entry
        self.keys[name] = (keys, password)
        return entry["Arn"]

    def role(self, name: str, trust: dict, inline: dict | None = None, managed: tuple[str, ...] = (),
             tags: dict | None = None, profile: bool = False, description: str = "") -> str:
        assert name not in self.roles, name
        entry = {"Path": "/", "RoleName": name, "RoleId": unique_id("AROA", name), "Arn": iam_arn("role", name),
                 "CreateDate": CREATED, "AssumeRolePolicyDocument": trust, "InstanceProfileList": [],
                 "RolePolicyList": [], "AttachedManagedPolicies": [],
                 "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()], "RoleLastUsed": {}}
        if description:
            entry["Description"] = description
        if profile:
            entry["InstanceProfileList"].append({
                "Path": "/", "InstanceProfileName": name, "InstanceProfileId": unique_id("AIPA", name),
                "Arn": iam_arn("instance-profile", name), "CreateDate": CREATED,
                "Roles": [{"Path": "/", "RoleName": name, "RoleId": entry["RoleId"], "Arn": entry["Arn"],
                           "CreateDate": CREATED, "AssumeRolePolicyDocument": trust}]})
        for policy_name, doc in (inline or {}).items():
            entry["RolePolicyList"].append({"PolicyName": policy_name, "PolicyDocument": doc})
        for arn in managed:
            self._attach(entry, arn)
        self.roles[name] = entry
        return entry["Arn"]

    def group(self, name: str, inline: dict | None = None, managed: tuple[str, ...] = ()) -> str:
        assert name not in self.groups, name
        entry = {"Path": "/", "GroupName": name, "GroupId": unique_id("AGPA", name), "Arn": iam_arn("group", name),
                 "CreateDate": CREATED, "GroupPolicyList": [], "AttachedManagedPolicies": []}
        for policy_name, doc in (inline or {}).items():
            entry["GroupPolicyList"].append({"PolicyName": policy_name, "PolicyDocument": doc})
        for arn in managed:
            self._attach(entry, arn)
        self.groups[name] = entry
        return entry["Arn"]

    def label(self, arn: str, **facts) -> None:
        assert arn not in self.labels, arn
        kind, name = arn.split(":", 5)[5].split("/", 1)
        self.labels[arn] = {"arn": arn, "name": name, "kind": kind, **facts}

    # output
    def authorization_details(self) -> dict:
        return {"UserDetailList": list(self.users.values()), "GroupDetailList": list(self.groups.values()),
                "RoleDetailList": list(self.roles.values()), "Policies": list(self.policies.values())}

    def credential_report(self) -> str:
        header = ("user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
                  "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
                  "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
                  "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
                  "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,"
                  "cert_2_active,cert_2_last_rotated").split(",")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        created = "2025-03-03T09:00:00+00:00"
        writer.writerow(["<root_account>", f"arn:aws:iam::{ACCOUNT}:root", "2023-01-01T00:00:00+00:00",
                         "not_supported", "2025-11-02T08:00:00+00:00", "not_supported", "not_supported", "true",
                         "false", "N/A", "N/A", "N/A", "N/A", "false", "N/A", "N/A", "N/A", "N/A",
                         "false", "N/A", "false", "N/A"])
        for name, entry in self.users.items():
            keys, password = self.keys[name]
            row = [name, entry["Arn"], created, str(password).lower(),
                   "2026-05-20T10:00:00+00:00" if password else "N/A",
                   created if password else "N/A", "N/A", "true" if password else "false"]
            for slot in (1, 2):
                if keys >= slot:
                    row += ["true", "2025-09-01T00:00:00+00:00", "2026-05-30T12:00:00+00:00", REGION, "sts"]
                else:
                    row += ["false", "N/A", "N/A", "N/A", "N/A"]
            row += ["false", "N/A", "false", "N/A"]
            writer.writerow(row)
        return out.getvalue()


# -- the environment: admin targets, privileged service roles, existing resources ----------------

SERVICE_ADMIN_ROLES = {  # service principal -> the privileged role that trusts it (new-passrole targets)
    SP["lambda"]: "data-lambda-exec", SP["ec2"]: "fleet-ops-instance", SP["ecs-tasks"]: "ecs-platform-task",
    SP["glue"]: "glue-etl-service", SP["sagemaker"]: "ml-training-exec", SP["codebuild"]: "codebuild-release-service",
    SP["cloudformation"]: "cfn-provisioner", SP["apprunner"]: "apprunner-instance-role",
    SP["bedrock-agentcore"]: "agentcore-interpreter-exec", SP["datapipeline"]: "datapipeline-resource-role",
}
SERVICE_HARMLESS_ROLES = {  # service principal -> a role trusting it with harmless permissions
    SP["lambda"]: "lambda-basic-exec", SP["ec2"]: "ec2-ssm-core", SP["ecs-tasks"]: "ecs-task-logs",
    SP["glue"]: "glue-crawler-basic", SP["sagemaker"]: "sagemaker-notebook-basic", SP["codebuild"]: "codebuild-lint",
    SP["bedrock-agentcore"]: "agentcore-sandbox-exec", SP["apprunner"]: "apprunner-static-site",
}
FULL_ACCESS = document(allow("*", "*"))


def region_arn(token: str) -> str:
    service, rest = token.split(":", 1)
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{rest}"


def build_environment(account: Account) -> None:
    admin = account.aws_policy(ADMIN_POLICY, FULL_ACCESS)
    env = dict(role="target-admin", expected="admin", category=None)

    # admin users (principal-access targets) and the admin group
    account.group("platform-admins", managed=(admin,))
    account.label(account.user("ops-admin", groups=("platform-admins",), keys=1, password=True), **env,
                  note="admin through platform-admins; has a console password and one access key")
    account.label(account.user("legacy-deploy", managed=(admin,), keys=2), **env,
                  note="admin; already holds two access keys, no console password")
    account.label(account.user("emergency-access", managed=(admin,), keys=0), **env,
                  note="admin; no console password, no access key")
    account.group("readonly-viewers", inline={"viewers": document(READ_STATEMENT)})
    account.group("auditors", inline={"audit-read": document(allow(["cloudtrail:LookupEvents", "config:Get*"]))})

    # privileged roles that trust a service: what the new-passrole paths pass
    for turn, (service, name) in enumerate(SERVICE_ADMIN_ROLES.items()):
        trust = (trust_service(service, "elasticmapreduce.amazonaws.com") if service == SP["datapipeline"]
                 else trust_service(service))
        # alternately AdministratorAccess and an inline policy of the same effect
        inline = {} if turn % 2 == 0 else {"full-access": FULL_ACCESS}
        managed = (admin,) if turn % 2 == 0 else ()
        account.label(account.role(name, trust, inline=inline, managed=managed, profile=service == SP["ec2"]), **env,
                      note=f"privileged role trusting {service}")
    for service, name in SERVICE_HARMLESS_ROLES.items():
        account.label(account.role(name, trust_service(service), inline={"basic": document(HARMLESS_STATEMENT)},
                                   profile=service == SP["ec2"]),
                      role="environment", expected=[], category="environment",
                      note=f"harmless role trusting {service}")

    # CloudFormation StackSets, self-managed permissions: the administration role (trusts CloudFormation)
    # may assume the execution role, which is admin.
    stackset_admin = account.role(
        "AWSCloudFormationStackSetAdministrationRole", trust_service(SP["cloudformation"]),
        inline={"AssumeRole-AWSCloudFormationStackSetExecutionRole": document(allow(
            "sts:AssumeRole", iam_arn("role", "AWSCloudFormationStackSetExecutionRole")))})
    account.label(stackset_admin, role="chain", expected=["sts-001"], category="multi-hop", hops=1,
                  note="the StackSet administration role: one sts:AssumeRole hop to the admin execution role")
    account.label(account.role("AWSCloudFormationStackSetExecutionRole", trust_aws(stackset_admin), managed=(admin,)),
                  **env, note="StackSet execution role, admin, trusts the administration role")

    # other admin roles named by paths
    account.label(account.role("OrganizationAccountAccessRole", trust_aws(f"arn:aws:iam::{MGMT_ACCOUNT}:root"),
                               managed=(admin,)), **env, note="admin, trusts the management account")
    account.label(account.role("ops-breakglass", trust_aws(f"arn:aws:iam::{ACCOUNT}:root"), managed=(admin,)), **env,
                  note="admin, trusts the account (any principal allowed sts:AssumeRole on it)")
    account.label(account.role("dr-restore", trust_service("backup.amazonaws.com"), managed=(admin,)), **env,
                  note="admin, trusts only AWS Backup")

    # existing resources that run with privileged roles (the existing-passrole paths' prerequisites)
    existing = [
        ("storefront-apprunner-instance", SP["apprunner"], "apprunner service",
         region_arn("apprunner:service/storefront-api/8f3a2b1c9d0e4f5a6b7c8d9e0f1a2b3c"), ["apprunner-002"]),
        ("analytics-interpreter-exec", SP["bedrock-agentcore"], "bedrock-agentcore code interpreter (READY)",
         region_arn("bedrock-agentcore:code-interpreter/analytics_ci-Xk29dQ7pLm"), ["bedrock-002"]),
        ("network-baseline-cfn", SP["cloudformation"], "cloudformation stack with this service role",
         region_arn("cloudformation:stack/network-baseline/5e0c7a10-11aa-11ef-9a2b-0a1b2c3d4e5f"),
         ["cloudformation-002", "cloudformation-005"]),
        ("release-pipeline-service", SP["codebuild"], "codebuild project (buildspec overrides allowed, batch builds on)",
         region_arn("codebuild:project/release-pipeline"), ["codebuild-002", "codebuild-003"]),
        ("bastion-instance", SP["ec2"], "ec2 instance, running, SSM agent and EC2 Instance Connect, SSH open",
         region_arn("ec2:instance/i-0b7e4c2a9d1f36058"), ["ec2-002", "ec2instanceconnect-003", "ssm-001", "ssm-002"]),
        ("web-fleet-instance", SP["ec2"], "launch template lt-0c1d2e3f4a5b6c7d8 (used by an Auto Scaling group), "
         "an earlier version names this role's instance profile",
         region_arn("ec2:launch-template/lt-0c1d2e3f4a5b6c7d8"), ["ec2-004"]),
        ("analytics-dev-endpoint", SP["glue"], "glue development endpoint",
         region_arn("glue:devEndpoint/analytics-dev"), ["glue-002"]),
        ("invoice-sync-exec", SP["lambda"], "lambda function, triggered every 5 minutes by EventBridge",
         region_arn("lambda:function:invoice-sync"), ["lambda-003", "lambda-004", "lambda-005"]),
        ("ml-research-notebook", SP["sagemaker"], "sagemaker notebook instance (InService)",
         region_arn("sagemaker:notebook-instance/ml-research"), ["sagemaker-004", "sagemaker-005"]),
    ]
    for name, service, what, arn, paths in existing:
        role_arn = account.role(name, trust_service(service), managed=(admin,), profile=service == SP["ec2"])
        account.label(role_arn, **env, note=f"runs {arn}")
        account.resources.append({"arn": arn, "kind": what, "role": role_arn, "paths": paths})
    account.resources += [
        {"arn": region_arn("cloudformation:stackset/org-baseline:3c1d7e2a-8b9f-4a6c-b5d4-e3f2a1b0c9d8"),
         "kind": "cloudformation stack set (self-managed), one stack instance deployed",
         "role": iam_arn("role", "AWSCloudFormationStackSetExecutionRole"), "paths": ["cloudformation-004"]},
        {"arn": region_arn("ecs:cluster/prod-cluster"), "kind": "ecs cluster with two registered EC2 container "
         "instances", "role": None, "paths": ["ecs-003", "ecs-004", "ecs-005"]},
        {"arn": region_arn("glue:job/nightly-etl"), "kind": "glue job (runs with glue-crawler-basic)",
         "role": iam_arn("role", "glue-crawler-basic"), "paths": ["glue-005", "glue-006"]},
        {"arn": region_arn("dynamodb:table/orders/stream/2025-03-03T09:00:00.000"), "kind": "dynamodb stream",
         "role": None, "paths": ["lambda-002"]},
        {"arn": f"arn:aws:s3:::{ACCOUNT}-ml-datasets", "kind": "s3 bucket for training data", "role": None,
         "paths": ["sagemaker-002", "sagemaker-003"]},
        {"arn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0f1e2d3c4b5a69788", "kind": "default VPC subnet",
         "role": None, "paths": ["ec2-003"]},
    ]


# -- a path's two principals -------------------------------------------------------------------

ACTOR_TRUSTS = (
    ("lambda", lambda: trust_service(SP["lambda"])),
    ("ecs-tasks", lambda: trust_service(SP["ecs-tasks"])),
    ("github-oidc", lambda: {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": iam_arn("oidc-provider", "token.actions.githubusercontent.com")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                                       "token.actions.githubusercontent.com:sub":
                                           "repo:example-corp/platform:ref:refs/heads/main"}}}]}),
    ("ec2", lambda: trust_service(SP["ec2"])),
    ("codebuild", lambda: trust_service(SP["codebuild"])),
    ("ci-vendor", lambda: trust_aws(f"arn:aws:iam::{CI_ACCOUNT}:root",
                                    {"StringEquals": {"sts:ExternalId": "a7f3c9e1-ci"}})),
)


class Builder:
    def __init__(self, paths: dict[str, CatalogPath], seed: int = 65):
        self.paths = paths
        self.account = Account()
        build_environment(self.account)
        named_in_specs = {t.split(":")[1] for spec in SPECS.values()
                          for t in [*spec.res.values(), *spec.look.res.values(), spec.look.to or ""]
                          if isinstance(t, str) and t.startswith(("low-", "user:", "role:", "group:"))}
        taken = (set(self.account.users) | set(self.account.roles) | set(self.account.groups) | CHAIN_NAMES
                 | named_in_specs)
        self.names = NamePool(seed, taken)
        self.trust_turn = 0

    # tokens
    def resolve(self, token: str, me: dict) -> list[str]:
        if token == "*":
            return ["*"]
        if token == "self":
            return [me["arn"]]
        if token == "self-group":
            return [iam_arn("group", me["group"])]
        if token == "self-policy":
            return [iam_arn("policy", me["policy"])]
        if token == "var:user":
            return [iam_arn("user", "${aws:username}")]
        kind, _, rest = token.partition(":")
        if kind == "svc":
            return [iam_arn("role", SERVICE_ADMIN_ROLES[rest])]
        if kind == "harmless":
            return [iam_arn("role", SERVICE_HARMLESS_ROLES[rest])]
        if kind in ("user", "role", "group"):
            registry = {"user": self.account.users, "role": self.account.roles, "group": self.account.groups}[kind]
            assert rest in registry, f"{token}: not in the environment"
            return [iam_arn(kind, rest)]
        if kind in ("low-role", "low-policy"):
            name, trust = rest.split(":")
            self.low_role(name, trust, me)
            return [iam_arn("role" if kind == "low-role" else "policy", name if kind == "low-role" else f"{name}-access")]
        if kind == "low-user":
            name, keys = rest.split(":")
            if name not in self.account.users:
                self.account.label(self.account.user(name, inline={"read": document(READ_STATEMENT)}, keys=int(keys)),
                                   role="environment", expected=[], category="environment",
                                   note="a user without privileges (target of a principal-access path)")
            return [iam_arn("user", name)]
        if kind == "res":
            return [region_arn(rest)]
        if kind == "res-global":
            service, path = rest.split(":", 1)
            return [f"arn:aws:{service}:{REGION}::{path}"]
        raise ValueError(token)

    def low_role(self, name: str, trust: str, me: dict) -> None:
        if name in self.account.roles:
            return
        if trust == "self":
            doc = trust_aws(me["arn"])
            note = f"a role without privileges that trusts {me['name']}"
        elif trust == "root":
            doc = trust_aws(f"arn:aws:iam::{ACCOUNT}:root")
            note = "a role without privileges that trusts the account"
        else:
            doc = trust_service(SP[trust])
            note = f"a role without privileges that trusts {SP[trust]}"
        policy = self.account.policy(f"{name}-access", document(READ_STATEMENT))
        self.account.label(self.account.role(name, doc, managed=(policy,), profile=trust == "ec2"),
                           role="environment", expected=[], category="environment", note=note)

    def next_trust(self) -> tuple[str, dict]:
        name, make = ACTOR_TRUSTS[self.trust_turn % len(ACTOR_TRUSTS)]
        self.trust_turn += 1
        return name, make()

    # statements
    def statements(self, path: CatalogPath, spec: Spec, me: dict, look: Look | None) -> tuple[list[dict], dict]:
        """The Allow statements of the principal (grouped by resource and condition) and the facts of
        its form, for the manifest."""
        res = dict(spec.res)
        wildcards = dict(spec.wildcards)
        cond = {a: copy.deepcopy(c) for a, c in spec.cond.items()}
        actions = list(path.required)
        if look is not None:
            res.update(look.res)
            if look.kind == "missing":
                actions.remove(look.action)
                for action, pattern in list(wildcards.items()):  # a wildcard would grant it back
                    if fnmatch.fnmatch(look.action.lower(), pattern.lower()):
                        del wildcards[action]
            if look.kind == "retarget" and look.to:
                res[look.action] = look.to
            if look.kind == "passed-to":
                cond[look.action] = passed_to(look.service)
            if look.kind == "tag":
                cond[look.action] = principal_tag(*look.tag)
            if look.kind == "mfa":
                cond[look.action] = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
        grouped: dict[tuple, list[str]] = {}
        for action in actions:
            tokens = res.get(action, "*")
            resources = tuple(r for t in (tokens if isinstance(tokens, list) else [tokens])
                              for r in self.resolve(t, me))
            condition = json.dumps(cond.get(action), sort_keys=True) if cond.get(action) else ""
            written = wildcards.get(action, action)
            bucket = grouped.setdefault((resources, condition), [])
            if written not in bucket:
                bucket.append(written)
        statements = []
        for index, ((resources, condition), written) in enumerate(grouped.items()):
            sid = re.sub(r"[^A-Za-z0-9]", "", written[0].split(":")[1]) + str(index)
            statements.append(allow(written, list(resources), json.loads(condition) if condition else None, sid=sid))
        form = {
            "attach": spec.attach,
            "scoped": sorted({a for a in actions if res.get(a, "*") != "*"}),
            "wildcards": sorted(set(wildcards.values())),
            "variables": any("${" in r for resources, _condition in grouped for r in resources),
            "conditions": sorted(cond),
        }
        return statements, form

    def principal(self, path: CatalogPath, spec: Spec, look: Look | None) -> str:
        kind = spec.actor
        name = self.names.take(kind)
        me = {"name": name, "arn": iam_arn(kind, name), "group": None, "policy": None}
        stem = name.rsplit("-", 1)[0]
        tags = dict(spec.tags)
        if look is not None and look.kind == "tag":
            tags = dict(look.has)
        tags.setdefault("service", stem)
        if spec.attach in ("group", "group-managed") or spec.member:
            me["group"] = f"{name}-team"
        if spec.attach in ("managed", "group-managed"):
            me["policy"] = f"{name}-access" if spec.attach == "managed" else f"{me['group']}-access"
        statements, form = self.statements(path, spec, me, look)
        doc = document(*statements)
        inline, managed, group_inline, group_managed = {}, [], {}, []
        if spec.attach == "inline":
            inline[f"{stem}-permissions"] = doc
        elif spec.attach == "managed":
            managed.append(self.account.policy(me["policy"], doc, f"{name} workload permissions"))
        elif spec.attach == "group":
            group_inline[f"{me['group']}-permissions"] = doc
        elif spec.attach == "group-managed":
            group_managed.append(self.account.policy(me["policy"], doc, f"{me['group']} permissions"))
        if me["group"]:
            self.account.group(me["group"], inline=group_inline, managed=tuple(group_managed))
        boundary = None
        if look is not None and look.kind == "deny":
            guard = self.account.policy(f"{name}-guardrail", document(
                allow(look.action, "*", sid="Guardrail", effect="Deny")), "organisation guardrail")
            managed.append(guard)
        if look is not None and look.kind == "boundary":
            kept = [a for a in path.required if a != look.action]
            boundary = self.account.policy(f"{name}-boundary", document(
                allow(kept + ["logs:CreateLogStream", "logs:PutLogEvents", "cloudwatch:PutMetricData"], "*",
                      sid="Boundary")), "permissions boundary for the workload")
        if kind == "user":
            groups = (me["group"],) if me["group"] else ()
            self.account.user(name, inline=inline, managed=tuple(managed), groups=groups, tags=tags, keys=1)
            entry = self.account.users[name]
        else:
            if look is not None and look.kind == "mfa":
                trust_name, trust = "lambda", trust_service(SP["lambda"])
            else:
                trust_name, trust = self.next_trust()
            self.account.role(name, trust, inline=inline, managed=tuple(managed), tags=tags,
                              profile=trust_name == "ec2")
            entry = self.account.roles[name]
        if boundary:
            self.account._boundary(entry, boundary)
        if look is None:
            self.account.label(me["arn"], role="can", expected=[path.id, *spec.also], category=path.category,
                               path=path.id, form=form)
        else:
            self.account.label(me["arn"], role="cannot", expected=[], category=path.category, path=path.id,
                               form=form, blocker=look.kind,
                               why=look.why or LOOK_WORDS[look.kind] + (f" ({look.action})" if look.action else ""))
        return me["arn"]

    def build(self) -> dict:
        missing = sorted(set(self.paths) - set(SPECS))
        extra = sorted(set(SPECS) - set(self.paths))
        assert not missing and not extra, f"specs and catalogue differ: missing {missing}, unknown {extra}"
        index = {}
        for path_id in sorted(self.paths):
            path, spec = self.paths[path_id], SPECS[path_id]
            for action in list(spec.res) + list(spec.wildcards) + list(spec.cond) + list(spec.look.res):
                assert action in path.required, f"{path_id}: {action} is not a required permission of the path"
            if spec.look.action:
                assert spec.look.action in path.required, f"{path_id}: look-alike blocks {spec.look.action}"
            index[path_id] = {"name": path.name, "category": path.category, "file": path.file,
                              "required": list(path.required),
                              "can": self.principal(path, spec, None), "cannot": self.principal(path, spec, spec.look)}
        build_chains(self.account)
        return index


# -- chains of sts:AssumeRole -------------------------------------------------------------------

CHAIN_NAMES = {"nightly-reconciler", "finops-admin", "gh-release", "release-managers", "deploy-prod", "vendor-sync",
               "partner-gateway", "tenant-admin", "fleet-agent", "shared-tooling", "infra-admin", "queue-drainer",
               "jenkins-legacy", "build-operators", "backup-sync", "archive-gateway", "log-shipper",
               "metrics-readonly", "compliance-scanner", "security-audit-admin", "incident-bot", "org-guardrails"}


def build_chains(account: Account) -> None:
    admin = ADMIN_POLICY
    root = f"arn:aws:iam::{ACCOUNT}:root"
    target = dict(role="target-admin", expected="admin", category=None)

    def can(arn: str, hops: int, note: str) -> None:
        account.label(arn, role="chain", expected=["sts-001"], category="multi-hop", hops=hops, note=note)

    def cannot(arn: str, why: str) -> None:
        account.label(arn, role="chain-cannot", expected=[], category="multi-hop", why=why)

    def assume(*targets: str) -> dict:
        return document(allow("sts:AssumeRole", list(targets), sid="AssumeRole"))

    # 1 hop, explicit trust: a Lambda role allowed to assume an admin role that names it.
    reconciler = iam_arn("role", "nightly-reconciler")
    account.label(account.role("finops-admin", trust_aws(reconciler), managed=(admin,)), **target,
                  note="admin, trusts nightly-reconciler")
    can(account.role("nightly-reconciler", trust_service(SP["lambda"]),
                     inline={"reconcile": assume(iam_arn("role", "finops-admin"))}), 1,
        "sts:AssumeRole on finops-admin, which trusts it")

    # 1 hop, through a group, into a role that trusts the account for principals named gh-*.
    account.label(account.role("deploy-prod", trust_aws(root, {"ArnLike": {"aws:PrincipalArn": iam_arn("user", "gh-*")}}),
                               managed=(admin,)), **target, note="admin, trusts the account's gh-* users")
    deploy_policy = account.policy("release-managers-access", assume(iam_arn("role", "deploy-*")))
    account.group("release-managers", managed=(deploy_policy,))
    can(account.user("gh-release", groups=("release-managers",)), 1,
        "through release-managers: sts:AssumeRole on deploy-*; deploy-prod trusts gh-* users")

    # 2 hops: user -> partner-gateway -> tenant-admin
    account.label(account.role("tenant-admin", trust_aws(iam_arn("role", "partner-gateway")), managed=(admin,)),
                  **target, note="admin, trusts partner-gateway")
    can(account.role("partner-gateway", trust_aws(iam_arn("user", "vendor-sync")),
                     inline={"hop": assume(iam_arn("role", "tenant-admin"))}), 1,
        "sts:AssumeRole on tenant-admin, which trusts it")
    can(account.user("vendor-sync", inline={"gateway": assume(iam_arn("role", "partner-gateway"))}), 2,
        "vendor-sync -> partner-gateway -> tenant-admin")

    # 2 hops: an instance role -> shared-tooling (trusts the account) -> infra-admin
    account.label(account.role("infra-admin", trust_aws(iam_arn("role", "shared-tooling")), managed=(admin,)),
                  **target, note="admin, trusts shared-tooling")
    can(account.role("shared-tooling", trust_aws(root), inline={"tooling": assume(iam_arn("role", "infra-*"))}), 1,
        "sts:AssumeRole on infra-*; infra-admin trusts it")
    can(account.role("fleet-agent", trust_service(SP["ec2"]), profile=True,
                     inline={"tooling": assume(iam_arn("role", "shared-tooling"))}), 2,
        "fleet-agent -> shared-tooling (trusts the account) -> infra-admin")

    # look-alikes
    cannot(account.role("queue-drainer", trust_service(SP["ecs-tasks"]),
                        inline={"finops": assume(iam_arn("role", "finops-admin"))}),
           "sts:AssumeRole on finops-admin, whose trust names only nightly-reconciler (trust side missing)")
    build_ops = account.policy("build-operators-access", assume(iam_arn("role", "deploy-*")))
    account.group("build-operators", managed=(build_ops,))
    cannot(account.user("jenkins-legacy", groups=("build-operators",)),
           "sts:AssumeRole on deploy-*, but deploy-prod trusts only gh-* users (a trust condition it does not meet)")
    cannot(account.role("archive-gateway", trust_aws(iam_arn("user", "backup-sync")),
                        inline={"hop": assume(iam_arn("role", "tenant-admin"))}),
           "sts:AssumeRole on tenant-admin, which trusts only partner-gateway (second hop's trust missing)")
    cannot(account.user("backup-sync", inline={"gateway": assume(iam_arn("role", "archive-gateway"))}),
           "backup-sync -> archive-gateway, which cannot go further")
    account.label(account.role("metrics-readonly", trust_aws(root), inline={"read": document(READ_STATEMENT)}),
                  role="environment", expected=[], category="environment",
                  note="a role without privileges that trusts the account")
    cannot(account.role("log-shipper", trust_service(SP["ec2"]), profile=True,
                        inline={"metrics": assume(iam_arn("role", "metrics-*"))}),
           "sts:AssumeRole only on metrics-*; shared-tooling trusts the account but the permission is missing")
    account.label(account.role("security-audit-admin",
                               trust_aws(root, {"Bool": {"aws:MultiFactorAuthPresent": "true"}}), managed=(admin,)),
                  **target, note="admin, trusts the account with MFA")
    cannot(account.role("compliance-scanner", trust_service(SP["lambda"]),
                        inline={"audit": assume(iam_arn("role", "security-audit-admin"))}),
           "sts:AssumeRole on security-audit-admin, which requires MFA; only Lambda can assume this role")
    guardrail = account.policy("org-guardrails", document(
        allow("sts:AssumeRole", iam_arn("role", "ops-*"), sid="NoBreakGlass", effect="Deny")))
    cannot(account.role("incident-bot", trust_service(SP["lambda"]), managed=(guardrail,),
                        inline={"oncall": assume(iam_arn("role", "ops-breakglass"))}),
           "sts:AssumeRole on ops-breakglass (which trusts the account), denied by org-guardrails")


# -- the whole fixture -------------------------------------------------------------------------


@dataclass
class Fixture:
    authz: dict
    report: str
    manifest: dict

    def write(self, folder: Path) -> dict[str, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        files = {"authz": folder / "authorization-details.json", "report": folder / "credential-report.csv",
                 "manifest": folder / "manifest.json"}
        files["authz"].write_text(json.dumps(self.authz, indent=1))
        files["report"].write_text(self.report)
        files["manifest"].write_text(json.dumps(self.manifest, indent=1))
        return files


def build(paths_dir: Path = PATHS_DIR) -> Fixture:
    paths = load_paths(paths_dir)
    builder = Builder(paths)
    index = builder.build()
    account = builder.account
    groups = {g: [u for u, e in account.users.items() if g in e["GroupList"]] for g in account.groups}
    manifest = {
        "account": ACCOUNT,
        "source": "written from pathfinding.cloud path YAMLs (DataDog, Apache-2.0): ../shared/data/pathfinding",
        "paths": index,
        "principals": sorted(account.labels.values(), key=lambda p: p["arn"]),
        "groups": groups,
        "resources": account.resources,
    }
    return Fixture(account.authorization_details(), account.credential_report(), manifest)


# -- measurement -------------------------------------------------------------------------------


def flagged(identity) -> bool:
    """nhiwatch's verdict: the identity could be admin: it is, or it has a route to admin that does not
    rest on a condition (routes that do are listed apart, in privesc_conditional, and not counted)."""
    return bool(identity.capabilities.get("admin") or identity.capabilities.get("privesc"))


def conditional_only(identity) -> bool:
    """Not flagged, but a route to admin exists if conditions the evaluation cannot decide hold."""
    return not flagged(identity) and bool(identity.capabilities.get("privesc_conditional"))


@dataclass
class Verdict:
    arn: str
    name: str
    category: str
    role: str
    exploitable: bool
    flagged: bool
    conditional: bool = False

    @property
    def right(self) -> bool:
        return self.exploitable == self.flagged


def judge(identities, manifest: dict) -> list[Verdict]:
    by_arn = {i.arn: i for i in identities}
    verdicts = []
    for label in manifest["principals"]:
        if label["expected"] == "admin":
            continue
        identity = by_arn.get(label["arn"])
        is_flagged = identity is not None and flagged(identity)
        conditional = identity is not None and conditional_only(identity)
        verdicts.append(Verdict(label["arn"], label["name"], label["category"], label["role"],
                                bool(label["expected"]), is_flagged, conditional))
    return verdicts


def summarise(verdicts: list[Verdict], categories: tuple[str, ...] | None = None) -> dict[str, dict]:
    rows: dict[str, dict] = defaultdict(lambda: {"exploitable": 0, "found": 0, "safe": 0, "false_positives": 0,
                                                 "conditional": 0})
    for v in verdicts:
        for key in (v.category, "total"):
            row = rows[key]
            if v.exploitable:
                row["exploitable"] += 1
                row["found"] += v.flagged
            else:
                row["safe"] += 1
                row["false_positives"] += v.flagged
            row["conditional"] += v.conditional
    order = [c for c in (categories or (*CATEGORIES, "environment")) if c in rows] + \
        sorted(k for k in rows if k not in (categories or (*CATEGORIES, "environment")) and k != "total") + ["total"]
    return {k: dict(rows[k]) for k in order if k in rows}


def format_table(summary: dict[str, dict], title: str) -> str:
    lines = [title, f"  {'category':<20} {'flagged/exploitable':>20} {'recall':>7} {'false pos./safe':>16}"
                    f" {'conditional':>12}"]
    for category, row in summary.items():
        recall = f"{row['found'] / row['exploitable']:.2f}" if row["exploitable"] else "-"
        lines.append(f"  {category:<20} {row['found']:>9}/{row['exploitable']:<10} {recall:>7} "
                     f"{row['false_positives']:>7}/{row['safe']:<8} {row['conditional']:>12}")
    return "\n".join(lines)


def inventory(authz_path: Path, report_path: Path | None = None):
    """nhiwatch's inventory of one export (and credential report), as tests/test_inventory.py builds it."""
    from datetime import datetime, timezone

    from nhiwatch.inventory.build import build_inventory
    from nhiwatch.inventory.sources import merge_authz, read_source

    authz, reports = {}, {}
    for path in [p for p in (authz_path, report_path) if p]:
        source = read_source(path)
        target = authz if source.kind == "authorization-details" else reports
        for account, payload in source.accounts.items():
            target.setdefault(account, []).append(payload)
    merged = {a: merge_authz(pages) for a, pages in authz.items()}
    rows = {a: [r for page in pages for r in page] for a, pages in reports.items()}
    return build_inventory(merged, rows, datetime(2026, 6, 1, tzinfo=timezone.utc))


# -- IAM Vulnerable (Cloudsplaining's example account) -------------------------------------------


def iam_vulnerable_labels(path: Path = IAM_VULNERABLE) -> dict[str, bool]:
    """ARN -> exploitable, from the principals' names: privesc*/fn* can, fp* cannot. Groups count."""
    data = json.loads(path.read_text())
    labels = {}
    for list_name, key in (("UserDetailList", "UserName"), ("RoleDetailList", "RoleName"),
                           ("GroupDetailList", "GroupName")):
        for entry in data[list_name]:
            name = entry[key]
            if name.startswith(("privesc", "fn")):
                labels[entry["Arn"]] = True
            elif name.startswith("fp"):
                labels[entry["Arn"]] = False
    return labels


def judge_iam_vulnerable(identities, labels: dict[str, bool]) -> list[Verdict]:
    """A group counts as found only when the inventory lists it as an identity that is flagged."""
    by_arn = {i.arn: i for i in identities}
    verdicts = []
    for arn, exploitable in sorted(labels.items()):
        kind = arn.split(":", 5)[5].split("/", 1)[0]
        identity = by_arn.get(arn)
        is_flagged = identity is not None and flagged(identity)
        conditional = identity is not None and conditional_only(identity)
        verdicts.append(Verdict(arn, arn.rsplit("/", 1)[-1], kind, kind, exploitable, is_flagged, conditional))
    return verdicts


# -- Cloudsplaining ----------------------------------------------------------------------------

CLOUDSPLAINING_RISKS = ("PrivilegeEscalation", "ResourceExposure", "DataExfiltration", "CredentialsExposure",
                        "InfrastructureModification", "ServiceWildcard")


def cloudsplaining_principals(results: dict, risks: tuple[str, ...] = ("PrivilegeEscalation",)) -> set[str]:
    """Principals (users, roles and groups) holding a policy, directly or through a group, that
    Cloudsplaining flags for any of `risks`."""
    def flagged_policy(section: str, ids) -> bool:
        for pid in ids:
            detail = results.get(section, {}).get(pid) or {}
            if any((detail.get(risk) or {}).get("findings") for risk in risks):
                return True
        return False

    def policy_hits(principal: dict) -> bool:
        return (flagged_policy("customer_managed_policies", principal.get("customer_managed_policies", {}))
                or flagged_policy("aws_managed_policies", principal.get("aws_managed_policies", {}))
                or flagged_policy("inline_policies", principal.get("inline_policies", {})))

    groups_by_name = {g["name"]: g for g in results.get("groups", {}).values()}
    found = set()
    for group in results.get("groups", {}).values():
        if policy_hits(group):
            found.add(group["arn"])
    for section in ("users", "roles"):
        for principal in results.get(section, {}).values():
            hit = policy_hits(principal)
            for group in principal.get("groups", {}) if section == "users" else ():
                detail = results["groups"].get(group) or groups_by_name.get(group)
                hit = hit or bool(detail and policy_hits(detail))
            if hit:
                found.add(principal["arn"])
    return found


def run_cloudsplaining(authz_path: Path, workdir: Path) -> dict | None:
    """Cloudsplaining's scan of an export, when its CLI is installed beside this Python; None otherwise."""
    import subprocess

    executable = Path(sys.executable).parent / "cloudsplaining"
    if not executable.exists():
        return None
    workdir.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(executable), "scan", "--input-file", str(authz_path), "--output", str(workdir),
                    "--skip-open-report"], check=True, capture_output=True, cwd=workdir)
    return json.loads((workdir / f"iam-results-{authz_path.stem}.json").read_text())


def verdicts_from_set(found: set[str], labels: dict[str, tuple[str, str, bool]]) -> list[Verdict]:
    """labels: arn -> (name, category, exploitable)."""
    return [Verdict(arn, name, category, category, exploitable, arn in found)
            for arn, (name, category, exploitable) in sorted(labels.items())]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-3].strip())
        return 2
    files = build().write(Path(argv[1]))
    for path in files.values():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
