"""IAM evaluator benchmark: authorization decisions per second over about 10,000 principals.

The accounts are copies of the IAM Vulnerable export (../shared/data/iam/cloudsplaining/example.json:
44 users, 78 roles, 5 groups), each under its own account id, compiled with
`load_authorization_details`. Every principal is asked the questions an escalation graph asks: the
escalation actions on `*`, PassRole and AssumeRole on the account's roles (their trust policies read),
credential and policy writes on the account's users, with a context that leaves some keys unknown.

    python bench/evaluate_bench.py [--accounts 80 --targets 12]

Prints principals, compile seconds, evaluations, and evaluations/s for a cold pass (caches empty) and a
warm pass (the same questions again), with the verdict counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from nhiwatch.inventory.evaluate import Request, evaluate, load_authorization_details  # noqa: E402

EXAMPLE = REPO.parent / "shared" / "data" / "iam" / "cloudsplaining" / "example.json"
TEMPLATE_ACCOUNT = "200611803367"
ON_ANY = ["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:AttachGroupPolicy", "iam:PutGroupPolicy",
          "iam:AddUserToGroup", "lambda:CreateFunction", "lambda:UpdateFunctionCode", "glue:CreateDevEndpoint",
          "glue:UpdateDevEndpoint", "cloudformation:CreateStack", "cloudformation:UpdateStack",
          "codebuild:CreateProject", "sagemaker:CreateNotebookInstance", "ec2:RunInstances", "ssm:SendCommand",
          "ssm:StartSession", "datapipeline:CreatePipeline", "secretsmanager:GetSecretValue", "kms:Decrypt",
          "s3:GetObject"]
ON_ROLES = ["iam:PassRole", "sts:AssumeRole", "iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy",
            "iam:PutRolePolicy"]
PASSED_TO = {"iam:PassedToService": "lambda.amazonaws.com"}
ON_USERS = ["iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile", "iam:AttachUserPolicy",
            "iam:PutUserPolicy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=80)
    parser.add_argument("--targets", type=int, default=12, help="roles and users asked about per account")
    args = parser.parse_args()
    text = EXAMPLE.read_text()
    started = time.perf_counter()
    snapshots = [load_authorization_details(json.loads(text.replace(TEMPLATE_ACCOUNT, f"{500000000000 + n:012d}")))
                 for n in range(args.accounts)]
    compile_seconds = time.perf_counter() - started

    questions = []  # (principal, action, target, context, policies): a Request is built per evaluation
    for snapshot in snapshots:
        subjects = list(snapshot.subjects.values())
        roles = [s.resource for s in subjects if s.kind == "role" and s.resource is not None][: args.targets]
        users = [s.principal.arn for s in subjects if s.kind == "user"][: args.targets]
        ask = [(action, "*") for action in ON_ANY]
        ask += [(action, r) for action in ON_ROLES for r in roles]
        ask += [(action, u) for action in ON_USERS for u in users]
        for subject in subjects:
            for action, target in ask:
                context = PASSED_TO if action == "iam:PassRole" else None
                questions.append((subject.principal, action, target, context, subject.policies))
    principals = sum(len(s.subjects) for s in snapshots)

    def run() -> tuple[float, Counter]:
        verdicts: Counter = Counter()
        begun = time.perf_counter()
        for principal, action, target, context, policies in questions:
            verdicts[evaluate(Request(principal, action, target, context), policies).verdict] += 1
        return time.perf_counter() - begun, verdicts

    cold, verdicts = run()
    warm, _ = run()
    print(f"principals          {principals:,} ({args.accounts} accounts)")
    print(f"compile             {compile_seconds:.2f} s ({principals / compile_seconds:,.0f} principals/s, "
          f"JSON read + policies compiled)")
    print(f"evaluations         {len(questions):,} per pass (a Request built and evaluated each)")
    print(f"cold pass           {cold:.2f} s ({len(questions) / cold:,.0f} evaluations/s)")
    print(f"warm pass           {warm:.2f} s ({len(questions) / warm:,.0f} evaluations/s)")
    print("verdicts            " + ", ".join(f"{k.value} {v:,}" for k, v in sorted(verdicts.items())))


if __name__ == "__main__":
    main()
