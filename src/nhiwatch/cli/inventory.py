"""`nhiwatch inventory ...` and `nhiwatch posture`: the identity inventory and its posture findings."""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer
from rich.table import Table
from rich.text import Text

from nhiwatch.cli.common import (SEVERITY_STYLE, Exit, HomeOpt, JsonOpt, QuietOpt, check_time, console, emit_json, err,
                                 fail, open_store, plain, styled, time_option)
from nhiwatch.inventory.risk import RISK_LEVELS

inventory_app = typer.Typer(help="The identity inventory: load IAM exports or read IAM live, list, show.",
                            no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

AsOfOpt = Annotated[Optional[str], typer.Option(
    "--as-of", callback=check_time, help="Judge ages (key age, unused for N days) at this UTC time, e.g. 2026-03-31T00:00:00Z "
                    "(default: now, or the time of the previous load).")]
def _live_sources(profile, role_name, account, accounts_file, external_id, problems, say, *, notes=None,
                  read_org=True, read_resource_policies=True):
    from nhiwatch.inventory import live
    from nhiwatch.inventory.sources import read_authorization_details, read_credential_report

    account_ids = list(account or [])
    if accounts_file is not None:
        account_ids += live.read_account_list(accounts_file)
    if account_ids and not role_name:
        raise ValueError("--account/--accounts need --role-name: the role to assume in each account")
    sources = []
    if read_org:
        sources += _live_organization(profile, problems, notes if notes is not None else [], say)
    for label, session, error in live.account_sessions(profile=profile, role_name=role_name,
                                                       account_ids=account_ids or None, external_id=external_id):
        if error:
            problems.append(f"account {label}: {error}")
            continue
        say(f"reading IAM of account {label}")
        fetched = live.fetch_account(session)
        origin = f"live:{fetched.account_id}"
        problems += [f"{origin}: {p}" for p in fetched.problems]
        sources.append(read_authorization_details(origin, orjson.dumps(fetched.authorization_details).decode()))
        if fetched.credential_report:
            sources.append(read_credential_report(origin, fetched.credential_report))
        if read_resource_policies and fetched.account_id:
            sources.append(_live_resource_policies(session, fetched.account_id, origin, problems, say))
    return sources


def _live_organization(profile, problems: list[str], notes: list[str], say) -> list:
    """The organization's SCPs and RCPs, read with the base credentials (the management account or a
    delegated administrator); nothing when they cannot be read, with the reason."""
    import boto3
    from botocore.exceptions import BotoCoreError

    from nhiwatch.inventory.organization import OrganizationError, fetch_organization, read_organization
    from nhiwatch.inventory.sources import ORGANIZATION, SourceFile

    say("reading the organization's SCPs and RCPs")
    try:
        document, failed, said = fetch_organization(boto3.Session(profile_name=profile))
    except BotoCoreError as exc:
        problems.append(f"organization: cannot open AWS profile {profile!r}: {exc}; SCPs and RCPs not applied")
        return []
    problems += [f"organization: {p}" for p in failed]
    notes += [f"organization: {n}" for n in said]
    if document is None:
        return []
    source = SourceFile("live:organization", ORGANIZATION)
    try:
        source.accounts[ORGANIZATION] = read_organization(document, "live:organization", source.problems)
    except OrganizationError as exc:
        problems.append(f"{exc}; SCPs and RCPs not applied")
        return []
    problems += source.problems
    source.entries = len(source.accounts[ORGANIZATION]["Policies"])
    return [source]


def _live_resource_policies(session, account_id: str, origin: str, problems: list[str], say):
    from nhiwatch.inventory.resource_policies import fetch_resource_policies
    from nhiwatch.inventory.sources import RESOURCE_POLICIES, SourceFile

    say(f"reading resource policies (KMS, Secrets Manager, S3, Lambda) of account {account_id}")
    found = fetch_resource_policies(session, account_id)
    problems += [f"{origin}: {p}" for p in found.problems]
    # the account's entry is stored even when empty: this read replaces the previous one
    return SourceFile(origin, RESOURCE_POLICIES, {account_id: {}, **found.policies}, entries=found.read)


@inventory_app.command("load")
def load(
    paths: Annotated[Optional[list[str]], typer.Argument(
        help="authorization-details JSON and credential report files (CSV or get-credential-report JSON), "
             "or folders of them.", show_default=False)] = None,
    live: Annotated[bool, typer.Option("--live", help="Read IAM through the AWS API instead of files.")] = False,
    profile: Annotated[Optional[str], typer.Option(help="With --live: AWS profile (default credential chain).")] = None,
    role_name: Annotated[Optional[str], typer.Option(help="With --live: role to assume in each --account.")] = None,
    account: Annotated[Optional[list[str]], typer.Option("--account", help="With --live: account id (repeatable).")] = None,
    accounts_file: Annotated[Optional[Path], typer.Option("--accounts", help="With --live: file of account ids.")] = None,
    external_id: Annotated[Optional[str], typer.Option(help="With --role-name: sts:ExternalId to present.")] = None,
    org: Annotated[bool, typer.Option(
        "--org/--no-org", help="With --live: read the organization's SCPs and RCPs with the base credentials "
                               "(management account or delegated administrator).")] = True,
    resource_policies: Annotated[bool, typer.Option(
        "--resource-policies/--no-resource-policies",
        help="With --live: read KMS key, secret, bucket and Lambda function policies of each account.")] = True,
    as_of: AsOfOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Load IAM into the inventory and rebuild it: classification, posture findings, risk scores.

    Files are told by their content: authorization details, credential reports, an organization file
    (SCPs and RCPs: `nhiwatch inventory org-export` writes one) and resource policies (ARN -> policy).
    An account's new export replaces its previous one; files of one account given together are
    merged (pages); a new organization file replaces the stored one. Damaged files load what is
    readable and exit 3 with each problem's place.
    """
    from nhiwatch import pipeline
    from nhiwatch.ingest.pipeline import InputError, expand_paths
    from nhiwatch.store.db import resolve_home

    if bool(paths) == live:
        raise fail("give files or folders, or --live (not both)", Exit.USAGE, as_json)
    when = time_option(as_of, "--as-of", as_json)
    problems: list[str] = []
    notes: list[str] = []
    say = (lambda m: None) if quiet or as_json else (lambda m: err.print(styled((plain(m), "dim"))))
    if live:
        try:
            sources = _live_sources(profile, role_name, account, accounts_file, external_id, problems, say,
                                    notes=notes, read_org=org, read_resource_policies=resource_policies)
        except ValueError as exc:
            raise fail(str(exc), Exit.USAGE, as_json) from None
        origin = "live"
    else:
        try:
            files = expand_paths(paths or [], exclude=resolve_home(home))
        except InputError as exc:
            raise fail(str(exc), Exit.USAGE, as_json) from None
        if not files:
            raise fail("no files found in the given paths", Exit.USAGE, as_json)
        sources, problems = pipeline.read_iam(files)
        origin = ", ".join(str(p) for p in (paths or []))[:500]
    store = open_store(home, as_json)
    try:
        stored, identities = pipeline.load_inventory(store, sources, origin, when)
    finally:
        store.close()
    summary = {
        "files": [{"path": s.path, "kind": s.kind, "accounts": sorted(a for a in s.accounts if a != "aws"),
                   "entries": s.entries, "problems": len(s.problems)} for s in sources],
        "stored": stored,
        "identities": len(identities),
        "by_category": dict(Counter(i.category for i in identities)),
        "by_type": dict(Counter(i.nhi_type for i in identities)),
        "by_risk": dict(Counter(i.risk_level for i in identities)),
        "posture_findings": sum(len(i.findings) for i in identities),
        "problems": problems,
    }
    if notes:
        summary["notes"] = notes
    if as_json:
        emit_json(summary)
    elif not quiet:
        console.print(styled((str(len(identities)), "bold"),
                             f" identities in {len({i.account_id for i in identities})} accounts: "
                             + ", ".join(f"{v} {plain(k)}" for k, v in sorted(summary["by_category"].items()))))
        console.print("risk: " + ", ".join(f"{summary['by_risk'].get(level, 0)} {level}"
                                           for level in reversed(RISK_LEVELS)) +
                      f"; {summary['posture_findings']} posture findings (nhiwatch posture)")
        from nhiwatch.inventory.organization import summary as organization_summary
        from nhiwatch.inventory.sources import ORGANIZATION, RESOURCE_POLICIES

        for source in sources:
            if source.kind == ORGANIZATION and ORGANIZATION in source.accounts:
                counts = organization_summary(source.accounts[ORGANIZATION])
                console.print(f"organization {plain(str(counts['organization']))}: {counts['accounts']} accounts, "
                              f"{counts['scps']} SCPs, {counts['rcps']} RCPs applied ({plain(source.path)})")
        resource_count = sum(s.entries for s in sources if s.kind == RESOURCE_POLICIES)
        if any(s.kind == RESOURCE_POLICIES for s in sources):
            console.print(f"{resource_count} resource policies (nhiwatch posture paths ARN --to secrets|data|kms)")
        for note in notes:
            err.print(styled(("note:", "dim"), " ", plain(note)))
        for problem in problems[:40]:  # a problem quotes a file name or a value from it
            err.print(styled(("problem:", "yellow"), " ", plain(problem)))
        if len(problems) > 40:
            err.print(f"... and {len(problems) - 40} more (see --json)")
    if problems:
        raise typer.Exit(int(Exit.PARTIAL))


@inventory_app.command("org-export")
def org_export(
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the file here (default: stdout).")] = None,
    profile: Annotated[Optional[str], typer.Option(help="AWS profile (default credential chain).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the organization's SCPs and RCPs (roots, OUs, accounts, attachments, documents) as the
    organization file `inventory load` reads. Needs the management account or a delegated administrator
    (organizations:Describe*/List*). Exit 3 when a part could not be read (the file says what was)."""
    import boto3
    from botocore.exceptions import BotoCoreError

    from nhiwatch.inventory.organization import OrganizationError, fetch_organization, read_organization, summary

    try:
        fetched, problems, notes = fetch_organization(boto3.Session(profile_name=profile))
    except BotoCoreError as exc:
        raise fail(f"cannot open AWS profile {profile!r}: {exc}", Exit.USAGE, as_json) from None
    if fetched is None:
        raise fail("; ".join(problems + notes) or "no organization read", Exit.FATAL, as_json)
    try:  # written as `inventory load` will read it: policies flat, documents as objects
        document = read_organization(fetched, "organization", problems)
    except OrganizationError as exc:
        raise fail(str(exc), Exit.FATAL, as_json) from None
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text)
        except OSError as exc:
            raise fail(f"cannot write {output}: {exc.strerror or exc}", Exit.FATAL, as_json) from None
        counts = summary(document)
        if as_json:
            emit_json({"path": str(output), **counts, "problems": problems})
        else:
            console.print(f"{plain(str(output))}: organization {plain(str(counts['organization']))}, "
                          f"{counts['accounts']} accounts, {counts['scps']} SCPs, {counts['rcps']} RCPs")
    for problem in problems:
        err.print(styled(("problem:", "yellow"), " ", plain(problem)))
    if problems:
        raise typer.Exit(int(Exit.PARTIAL))


@inventory_app.command("refresh")
def refresh(as_of: AsOfOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Rebuild the inventory from the stored IAM exports and the events ingested since."""
    from nhiwatch.inventory.persist import rebuild

    when = time_option(as_of, "--as-of", as_json)
    store = open_store(home, as_json)
    try:
        identities = rebuild(store, when)
    finally:
        store.close()
    if as_json:
        emit_json({"identities": len(identities)})
    else:
        console.print(f"{len(identities)} identities rebuilt")


LIST_COLUMNS = ("risk_score", "risk_level", "nhi_type", "category", "account_id", "name", "type_detail",
                "last_active", "oldest_key_days", "findings", "owner", "arn")


@inventory_app.command("list")
def list_(
    type_: Annotated[Optional[list[str]], typer.Option("--type", help="NHI type (repeatable), e.g. user-with-keys.")] = None,
    account: Annotated[Optional[list[str]], typer.Option("--account", help="Account id (repeatable).")] = None,
    category: Annotated[Optional[list[str]], typer.Option(
        "--category", help="non-human, human, human-use-of-nhi or unknown (repeatable).")] = None,
    min_risk: Annotated[Optional[int], typer.Option(min=0, max=100, help="Only risk scores at or above.")] = None,
    risk: Annotated[Optional[str], typer.Option(help="Only this risk level: critical, high, medium, low.")] = None,
    search: Annotated[Optional[str], typer.Option(help="Text in the ARN, owner or team.")] = None,
    sort: Annotated[str, typer.Option(help="risk, name, account, type, last-active, key-age or findings.")] = "risk",
    limit: Annotated[int, typer.Option(min=0, help="At most this many rows (0: all).")] = 0,
    nhi_only: Annotated[bool, typer.Option("--nhi", help="Only non-human identities (and human use of them).")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV on stdout.")] = False,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The identities, riskiest first: type, account, risk, last activity, key age, findings."""
    from nhiwatch.inventory.model import CATEGORIES, NHI_TYPES
    from nhiwatch.inventory.persist import SORT_COLUMNS, InventoryMissing, list_identities

    if sort not in SORT_COLUMNS:
        raise fail(f"--sort must be one of {', '.join(SORT_COLUMNS)}", Exit.USAGE, as_json)
    for value in type_ or []:
        if value not in NHI_TYPES:
            raise fail(f"unknown --type {value!r}; known: {', '.join(NHI_TYPES)}", Exit.USAGE, as_json)
    categories = list(category or []) + (["non-human", "human-use-of-nhi"] if nhi_only else [])
    for value in categories:
        if value not in CATEGORIES:
            raise fail(f"unknown --category {value!r}; known: {', '.join(CATEGORIES)}", Exit.USAGE, as_json)
    if risk and risk not in RISK_LEVELS:
        raise fail("--risk must be critical, high, medium or low", Exit.USAGE, as_json)
    store = open_store(home, as_json, read_only=True)
    try:
        total, rows = list_identities(store, types=type_, accounts=account, categories=categories or None,
                                      min_risk=min_risk, level=risk, search=search, sort=sort, limit=limit or None)
    except InventoryMissing as exc:
        raise fail(str(exc), Exit.USAGE, as_json) from None
    finally:
        store.close()
    if as_json:
        emit_json({"total": total, "identities": rows})
        return
    if as_csv:
        # CSV has no escapes: piped, the values are exact; on a terminal, control characters show escaped
        clean = plain if sys.stdout.isatty() else (lambda value: value)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(LIST_COLUMNS)
        for row in rows:
            writer.writerow(["" if row[c] is None else clean(row[c]) for c in LIST_COLUMNS])
        return
    table = Table("risk", "type", "category", "account", "name", "detail", "last active", "key age", "findings",
                  "owner", title=f"{len(rows)} of {total} identities")
    for row in rows:  # names, details and owners (tags) are account text: plain
        style = SEVERITY_STYLE.get(row["risk_level"], "")
        table.add_row(Text(f"{row['risk_score']} {plain(row['risk_level'])}", style=style), plain(row["nhi_type"]),
                      plain(row["category"]), plain(row["account_id"]), plain(row["name"]),
                      plain(row["type_detail"] or "", 60), plain(row["last_active"] or "never")[:10],
                      "" if row["oldest_key_days"] is None else f"{row['oldest_key_days']} d", str(row["findings"]),
                      plain(row["owner"] or ""))
    console.print(table)


@inventory_app.command("show")
def show(
    reference: Annotated[str, typer.Argument(help="ARN (or a unique name or unique id) of the identity.")],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Everything known about one identity: type and evidence, policies, trust, keys, capabilities,
    posture findings, risk reasons, owner and origin, used versus granted permissions."""
    from nhiwatch.inventory.persist import InventoryMissing, get_identity

    store = open_store(home, as_json, read_only=True)
    try:
        identity = get_identity(store, reference)
    except (InventoryMissing, LookupError) as exc:
        raise fail(str(exc), Exit.USAGE, as_json) from None
    finally:
        store.close()
    if identity is None:
        raise fail(f"no identity {reference!r} in the inventory", Exit.USAGE, as_json)
    if as_json:
        emit_json(identity.to_dict())
        return
    _print_identity(identity)


def _print_identity(identity) -> None:
    """Names, tags, policy names, evidence and creators come from the account and its CloudTrail: every
    one is plain text; the labels are our styling."""
    out = console.print
    p = plain
    style = SEVERITY_STYLE.get(identity.risk_level, "")
    out(styled((p(identity.arn), "bold")))
    out(styled(f"{p(identity.nhi_type)} ({p(identity.type_detail)}) · {p(identity.category)} · risk ",
               (f"{identity.risk_score} {p(identity.risk_level)}", style)))
    out(f"created {p(identity.created or 'unknown')} · last active {p(identity.last_active or 'never seen')}"
        + (f" ({p(identity.last_active_source)})" if identity.last_active_source else "")
        + f" · owner {p(identity.owner or 'untagged')}" + (f" · team {p(identity.team)}" if identity.team else ""))
    out(styled(("why this type", "bold")))
    for line in identity.evidence:
        out(f"  - {p(line)}")
    if identity.origin:
        out(styled(("origin", "bold")))
        if identity.origin.get("creator"):
            out(f"  created by {p(identity.origin['creator'])} at {p(identity.origin['created_at'])} "
                f"(event {p(identity.origin['event_id'])})")
        for key in identity.origin.get("keys", []):
            out(f"  access key {p(key['key_id'])} created by {p(key['creator'])} at {p(key['created_at'])}")
    if identity.risk_reasons:
        out(styled((f"risk {identity.risk_score}", "bold"), " = " + " + ".join(
            f"{r.counted} {p(r.factor)} ({p(r.text)})" for r in identity.risk_reasons if r.counted)))
    else:
        out(styled(("risk 0", "bold"), ": nothing raises it"))
    if identity.findings:
        table = Table("severity", "check", "OWASP", "detail", title="posture findings")
        for f in identity.findings:
            table.add_row(Text(f.severity, style=SEVERITY_STYLE.get(f.severity, "")), f.check, ",".join(f.owasp),
                          p(f.detail))
        out(table)
    caps = identity.capabilities
    if caps.get("privesc") or caps.get("privesc_conditional"):
        methods = caps.get("privesc") or [f"{m} (conditional)" for m in caps.get("privesc_conditional") or []]
        out(styled(("escalation methods", "bold"), ": " + ", ".join(p(x) for x in methods)))
        if caps.get("privesc_route"):
            out(styled(("shortest route", "bold"), ": " + p(_route_line(caps["privesc_route"]))
                       + f" (nhiwatch posture paths {p(identity.arn)})"))
    reached = {name: route for name, route in (caps.get("capability_routes") or {}).items() if route}
    if reached:
        out(styled(("reaches", "bold"), ": " + ", ".join(
            f"{name} ({'holds it' if not route['hops'] else str(len(route['hops'])) + ' hop(s)'}"
            + (", conditional" if route.get("conditional") else "") + ")" for name, route in reached.items())
            + f" (nhiwatch posture paths {p(identity.arn)} --to ...)"))
    if identity.policies:
        out(styled(("policies", "bold"), ": " + ", ".join(
            f"{p(x.name)} ({p(x.kind)}{' via ' + p(x.via) if x.via else ''}{'' if x.readable else ', unreadable'})"
            for x in identity.policies)))
    if identity.boundary:
        out(styled(("permission boundary", "bold"), f": {p(identity.boundary)}"))
    for key in identity.keys:
        out(f"  key {key.slot}: {'active' if key.active else 'inactive'}, created {p(key.created or '?')}, "
            f"last used {p(key.last_used or 'never')}" + (f" ({p(key.last_used_service)})"
                                                          if key.last_used_service else ""))
    if identity.usage:
        usage = identity.usage
        out(styled(("used versus granted", "bold"),
                   f": {usage['used_actions']} actions used of {usage['granted_patterns']} granted patterns; "
                   f"unused grants: {', '.join(p(x) for x in usage['unused_grants'][:12]) or 'none'}"))
        out("suggested least-privilege policy:")
        out(orjson.dumps(usage["suggested_policy"], option=orjson.OPT_INDENT_2).decode())
    for problem in identity.problems:
        err.print(styled(("note:", "yellow"), " ", p(problem)))


posture_app = typer.Typer(help="Posture findings of the inventory; `posture paths`: routes to admin.",
                          invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})


@posture_app.callback()
def posture(
    ctx: typer.Context,
    min_severity: Annotated[str, typer.Option(help="info, low, medium, high or critical.")] = "low",
    check: Annotated[Optional[list[str]], typer.Option("--check", help="Only this check id (repeatable).")] = None,
    account: Annotated[Optional[list[str]], typer.Option("--account", help="Account id (repeatable).")] = None,
    owasp: Annotated[Optional[str], typer.Option(help="Only findings mapped to this OWASP NHI id, e.g. NHI7.")] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many rows in the table (0: all).")] = 100,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Posture findings of the inventory, most severe first, each with its OWASP NHI Top 10 and NIST
    CSF 2.0 ids. Exit 0 even when there are findings (use --json and count them in scripts)."""
    if ctx.invoked_subcommand is not None:
        return
    from nhiwatch.core.severity import SEVERITIES
    from nhiwatch.inventory.persist import InventoryMissing, posture_findings
    from nhiwatch.inventory.posture import CHECKS

    if min_severity not in SEVERITIES:
        raise fail(f"--min-severity must be one of {', '.join(SEVERITIES)}", Exit.USAGE, as_json)
    known = {c.id for c in CHECKS}
    for value in check or []:
        if value not in known:
            raise fail(f"unknown --check {value!r}; known: {', '.join(sorted(known))}", Exit.USAGE, as_json)
    store = open_store(home, as_json, read_only=True)
    try:
        rows = posture_findings(store, min_severity=min_severity, checks=check, accounts=account, owasp=owasp)
    except InventoryMissing as exc:
        raise fail(str(exc), Exit.USAGE, as_json) from None
    finally:
        store.close()
    if as_json:
        emit_json(rows)
        return
    shown = rows[:limit] if limit else rows
    table = Table("severity", "check", "OWASP", "NIST", "identity", "type", "detail",
                  title=f"{len(rows)} posture findings at {min_severity} or above")
    for r in shown:  # the ARN and the detail quote the account's names: plain
        table.add_row(Text(r["severity"], style=SEVERITY_STYLE.get(r["severity"], "")), r["check_id"],
                      ",".join(r["owasp"]), ",".join(r["nist"]), plain(r["arn"]), plain(r["nhi_type"]),
                      plain(r["detail"]))
    console.print(table)
    if len(rows) > len(shown):
        console.print(f"... and {len(rows) - len(shown)} more (--limit 0 or --json)")
    by_owasp = Counter(o for r in rows for o in r["owasp"])
    if by_owasp:
        console.print("by OWASP NHI Top 10: " + ", ".join(f"{k} {v}" for k, v in sorted(by_owasp.items())))


@posture_app.command("paths")
def paths(
    reference: Annotated[Optional[str], typer.Argument(
        metavar="[ARN]", help="An identity's ARN (or unique name): its routes hop by hop. Without: every "
                              "identity that can become admin.", show_default=False)] = None,
    conditional: Annotated[bool, typer.Option(
        "--conditional", help="Also identities whose every route rests on a condition nhiwatch cannot decide.")] = False,
    to: Annotated[str, typer.Option(
        "--to", help="What to reach: admin; secrets (secretsmanager:GetSecretValue, ssm:GetParameter*); data "
                     "(s3:GetObject, DynamoDB reads); kms (kms:Decrypt, kms:CreateGrant).")] = "admin",
    account: Annotated[Optional[list[str]], typer.Option("--account", help="Account id (repeatable).")] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many rows in the table (0: all).")] = 100,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Routes to admin (or, with --to, to a capability) from the principal graph: each hop a method
    (pathfinding.cloud id where the catalogue has the path) with the permissions it needs and what the
    evaluator said of each; for a capability, the final grant too (identity and resource policies, SCPs
    and RCPs applied)."""
    from nhiwatch.inventory.capabilities import ADMIN, TARGETS
    from nhiwatch.inventory.persist import InventoryMissing, capability_paths, escalation_paths, get_identity

    if to not in TARGETS:
        raise fail(f"--to must be one of {', '.join(TARGETS)}", Exit.USAGE, as_json)
    store = open_store(home, as_json, read_only=True)
    try:
        if reference is None:
            rows = escalation_paths(store, accounts=account, conditional=conditional) if to == ADMIN else \
                capability_paths(store, to, accounts=account, conditional=conditional)
        else:
            identity = get_identity(store, reference)
    except InventoryMissing as exc:
        raise fail(str(exc), Exit.USAGE, as_json) from None
    except LookupError as exc:
        raise fail(str(exc), Exit.USAGE, as_json) from None
    finally:
        store.close()
    if reference is None:
        if to == ADMIN:
            _print_paths(rows, limit, as_json)
        else:
            _print_capability_paths(rows, to, limit, as_json)
        return
    if identity is None:
        raise fail(f"no identity {reference!r} in the inventory", Exit.USAGE, as_json)
    if to == ADMIN:
        _print_routes(identity, as_json)
    else:
        _print_capability_route(identity, to, as_json)


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn


def _route_line(route: dict) -> str:
    """`sts-001 -> deploy -> iam-005 -> deploy`: each hop's method and where it lands."""
    text = " -> ".join(f"{hop['method']} -> {_short(hop['to'])}" for hop in route.get("hops", []))
    if route.get("via_member"):
        text = f"(member {_short(route['via_member'])}) " + text
    return text + (" [conditional]" if route.get("conditional") else "") + (
        " [any foothold]" if route.get("foothold") else "")


def _print_paths(rows: list[dict], limit: int, as_json: bool) -> None:
    if as_json:
        emit_json(rows)
        return
    shown = rows[:limit] if limit else rows
    table = Table("risk", "identity", "type", "methods", "shortest route", title=f"{len(rows)} identities can become admin")
    for row in shown:  # names come from the account: plain
        methods = row["methods"] or [f"{m} (conditional)" for m in row["conditional"]]
        route = row["route"] or {}
        table.add_row(f"{row['risk_score']} {plain(row['risk_level'])}", plain(row["arn"]), plain(row["nhi_type"]),
                      plain(", ".join(methods)), plain(_route_line(route)))
    console.print(table)
    if len(rows) > len(shown):
        console.print(f"... and {len(rows) - len(shown)} more (--limit 0 or --json)")


def _print_routes(identity, as_json: bool) -> None:
    from nhiwatch.inventory.methods import method

    caps = identity.capabilities
    if as_json:
        emit_json({"arn": identity.arn, "admin": caps.get("admin") or [], "methods": caps.get("privesc") or [],
                   "conditional": caps.get("privesc_conditional") or [], "routes": caps.get("privesc_routes") or [],
                   "route": caps.get("privesc_route")})
        return
    p = plain
    console.print(styled((p(identity.arn), "bold")))
    if caps.get("admin"):
        console.print("is admin already, through " + ", ".join(p(x) for x in caps["admin"]))
        return
    routes = caps.get("privesc_routes") or []
    if not routes:
        console.print("no route to admin")
        return
    best = caps.get("privesc_route") or {}
    for number, route in enumerate(routes, 1):
        names = ", ".join(f"{m} ({method(m).title})" for m in route["methods"])
        console.print(styled((f"route {number}", "bold"), f": {p(names)}; admin: {p(_short(route['admin']))}" + (
            " (conditional)" if route.get("conditional") else "") + (" (any foothold)" if route.get("foothold") else "")))
        if route.get("via_member"):
            console.print(f"  through member {p(route['via_member'])}")
        full = best.get("hops") if route["hops"] == [{k: h[k] for k in ("from", "to", "method")}
                                                   for h in best.get("hops", [])] else None
        for step, hop in enumerate(full or route["hops"], 1):
            console.print(f"  hop {step}: {p(_short(hop['from']))} --{p(hop['method'])}--> {p(hop['to'])}")
            if hop.get("note"):
                console.print(f"         {p(hop['note'])}")
            for check in hop.get("checks", []):
                asked = f" (asked as {p(check['principal'])})" if check.get("principal") else ""
                because = "; ".join(check.get("statements") or []) or "-"
                undecided = f"; depends on {', '.join(check['undecided'])}" if check.get("undecided") else ""
                console.print(f"         {p(check['action'])} on {p(check['resource'])}{asked}: "
                              f"{p(check['verdict'])} [{p(because)}{p(undecided)}]")


def _capability_line(route: dict) -> str:
    """`sts-001 -> vault-reader: secretsmanager:getsecretvalue on arn:...`: the hops, then the grant."""
    grant = route.get("grant") or {}
    hops = " -> ".join(f"{hop['method']} -> {_short(hop['to'])}" for hop in route.get("hops", []))
    end = f"{grant.get('action')} on {grant.get('resource')}"
    return (f"{hops} -> {end}" if hops else f"holds it: {end}") + (
        " [after escalation]" if grant.get("escalated") else "") + (" [conditional]" if route.get("conditional")
                                                                    else "")


def _print_capability_paths(rows: list[dict], to: str, limit: int, as_json: bool) -> None:
    if as_json:
        emit_json(rows)
        return
    shown = rows[:limit] if limit else rows
    table = Table("risk", "identity", "type", "hops", "shortest route", title=f"{len(rows)} identities reach {to}")
    for row in shown:  # names and ARNs come from the account: plain
        route = row["route"]
        table.add_row(f"{row['risk_score']} {plain(row['risk_level'])}", plain(row["arn"]), plain(row["nhi_type"]),
                      str(len(route.get("hops", []))), plain(_capability_line(route)))
    console.print(table)
    if len(rows) > len(shown):
        console.print(f"... and {len(rows) - len(shown)} more (--limit 0 or --json)")


def _print_capability_route(identity, to: str, as_json: bool) -> None:
    from nhiwatch.inventory.capabilities import CAPABILITIES
    from nhiwatch.inventory.methods import method

    caps = identity.capabilities
    root = identity.kind == "root"
    route = (caps.get("capability_routes") or {}).get(to)
    if as_json:
        emit_json({"arn": identity.arn, "to": to, "actions": list(CAPABILITIES[to].actions),
                   "root": root, "route": route})
        return
    p = plain
    console.print(styled((p(identity.arn), "bold")))
    if root:
        console.print(f"is the root user: it may {CAPABILITIES[to].title} unless an RCP or a resource policy "
                      "denies it")
        return
    if route is None:
        console.print(f"no route to {to} ({', '.join(CAPABILITIES[to].actions)})")
        return
    grant = route["grant"]
    console.print(styled((f"reaches {to}", "bold"), f" in {len(route['hops'])} hop(s)" + (
        " (conditional)" if route.get("conditional") else "")))
    for step, hop in enumerate(route["hops"], 1):
        console.print(f"  hop {step}: {p(_short(hop['from']))} --{p(hop['method'])} ({p(method(hop['method']).title)})"
                      f"--> {p(hop['to'])}")
        if hop.get("note"):
            console.print(f"         {p(hop['note'])}")
        for check in hop.get("checks", []):
            _print_check(check)
    console.print(f"  grant: {p(grant['principal'])}" + (" (after the escalation writes AdministratorAccess)"
                                                        if grant.get("escalated") else ""))
    _print_check(grant, asked_as=False)
    if grant.get("note"):
        console.print(f"         {p(grant['note'])}")


def _print_check(check: dict, asked_as: bool = True) -> None:
    """One permission check; `asked_as`: say who was asked when a hop's check names its own principal
    (a service, for a trust policy)."""
    p = plain
    asked = f" (asked as {p(check['principal'])})" if asked_as and check.get("principal") else ""
    because = "; ".join(check.get("statements") or []) or "-"
    undecided = f"; depends on {', '.join(check['undecided'])}" if check.get("undecided") else ""
    console.print(f"         {p(check['action'])} on {p(check['resource'])}{asked}: "
                  f"{p(check['verdict'])} [{p(because)}{p(undecided)}]")
