"""`nhiwatch respond ...`: plan, run, automate and undo containment. Dry-run unless told otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from nhiwatch.cli.common import Exit, HomeOpt, JsonOpt, console, emit_json, fail, open_store, plain, styled

respond_app = typer.Typer(
    help="Contain: revoke sessions, deactivate keys, quarantine, fence. Every command is a dry-run that prints "
         "the exact calls unless --execute (or --approve) is given; every change is recorded and can be undone.",
    no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

ProfileOpt = Annotated[Optional[str], typer.Option(help="AWS profile (default: the standard credential chain).")]
RoleNameOpt = Annotated[Optional[str], typer.Option(
    help="Role to assume in an identity's account when it is not the caller's own.")]
ExternalIdOpt = Annotated[Optional[str], typer.Option(help="ExternalId for --role-name.")]
ProtectOpt = Annotated[Optional[list[str]], typer.Option(
    "--protect", help="ARN pattern or name never to act on (repeatable; adds to the policy file's list).")]


def _responder(store, profile, role_name, external_id, protected, as_json, mode="manual"):
    from nhiwatch.respond.executor import Responder
    from nhiwatch.respond.service import AwsUnavailable, aws_sessions

    try:
        session_for, own_arn = aws_sessions(profile, role_name, external_id)
    except AwsUnavailable as exc:
        store.close()
        raise fail(str(exc), Exit.FATAL, as_json) from None
    return Responder(store, session_for, protected=protected, own_arn=own_arn, mode=mode)


def _print_plan(proposals) -> None:
    # identities, reasons and AWS's messages quote the events: plain text in our styling
    for p in proposals:
        state = styled(("refused:", "red"), " ", plain(p.refused)) if p.refused else \
            styled(plain(p.plan.summary) if p.plan else "")
        console.print(styled((plain(p.kind), "bold"), f" on {plain(p.identity)} — {plain(p.why)}"))
        console.print(styled("    ", state))
        if p.plan is not None and not p.refused:
            _print_calls(p.plan.calls)


def _print_calls(calls) -> None:
    for call in calls:
        console.print(f"    $ {plain(call.cli())}", soft_wrap=True)


def _print_record(record: dict, secret: str | None = None) -> None:
    colour = {"executed": "green", "undone": "green", "failed": "red", "partial": "red", "undo-failed": "red"}
    console.print(styled(f"{plain(record['id'])}: {plain(record['kind'])} on {plain(record['identity'])} -> ",
                         (plain(record["status"]), colour.get(record["status"], "yellow"))))
    error = record.get("error") or (record.get("undo") or {}).get("error")
    if error:
        console.print(f"    AWS said: {plain(error)}")
    if secret:
        console.print(f"    new one-time console password (shown once, must be changed at sign-in): {plain(secret)}")


@respond_app.command("plan")
def plan(incident_id: Annotated[str, typer.Argument(help="Incident id (inc-...).")],
         protect: ProtectOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The playbook for an incident: which actions on which identities, with the exact API calls."""
    from nhiwatch.respond.service import incident_proposals

    store = open_store(home, as_json, read_only=True)
    try:
        incident, proposals = incident_proposals(store, incident_id, protect or [])
    except LookupError as exc:
        raise fail(str(exc), Exit.USAGE, as_json) from None
    finally:
        store.close()
    if as_json:
        emit_json({"incident_id": incident["id"], "severity": incident["severity"], "dry_run": True,
                   "actions": [p.to_dict() for p in proposals]})
        return
    console.print(f"response plan for {plain(incident['id'])} ({incident['severity']}): {plain(incident['title'])}")
    _print_plan(proposals)
    console.print("dry-run: nothing was changed. Run one action with `nhiwatch respond run ... --execute`, or "
                  f"`nhiwatch respond incident {incident['id']} --approve` to confirm each.")


@respond_app.command("run")
def run_action(
    action: Annotated[str, typer.Argument(help="revoke-sessions, revoke-session, deactivate-key, disable-console, "
                                               "quarantine, network-fence, tighten-oidc-trust or notify.")],
    identity: Annotated[str, typer.Option(help="ARN of the IAM user or role.")],
    key: Annotated[Optional[str], typer.Option(help="Access key id (deactivate-key).")] = None,
    session: Annotated[Optional[str], typer.Option(help="Role session name (revoke-session).")] = None,
    role_id: Annotated[Optional[str], typer.Option(help="Role unique id AROA... (revoke-session; default: "
                                                        "from the inventory).")] = None,
    cidr: Annotated[Optional[list[str]], typer.Option(help="Allowed network (network-fence; repeatable).")] = None,
    vpce: Annotated[Optional[list[str]], typer.Option(help="Allowed VPC endpoint (network-fence; repeatable).")] = None,
    subject: Annotated[Optional[list[str]], typer.Option(help="Allowed OIDC subject (tighten-oidc-trust).")] = None,
    incident: Annotated[Optional[str], typer.Option(help="Incident this action answers (recorded).")] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "manual response",
    execute: Annotated[bool, typer.Option("--execute", help="Make the change (default: dry-run).")] = False,
    profile: ProfileOpt = None, role_name: RoleNameOpt = None, external_id: ExternalIdOpt = None,
    protect: ProtectOpt = None, home: HomeOpt = None, as_json: JsonOpt = False,
) -> None:
    """One action on one identity."""
    from nhiwatch.respond.actions import ACTIONS, ActionError, Target
    from nhiwatch.respond.executor import guard

    if action not in ACTIONS:
        raise fail(f"unknown action {action!r}; known: {', '.join(ACTIONS)}", Exit.USAGE, as_json)
    known = _inventory_facts(home, identity)
    options = {"key": key, "session": session, "role_id": role_id, "cidrs": cidr or [], "vpc_endpoints": vpce or [],
               "subjects": subject or [], "trust": known.trust if known else None, "why": reason}
    try:
        target = Target.from_arn(identity, role_id or (known.unique_id if known else None))
        plan = ACTIONS[action].plan(target, options)
        guard(target, own_arn=None, protected=protect or [])
    except ActionError as exc:
        raise fail(str(exc), Exit.USAGE, as_json) from None
    if not execute:
        if as_json:
            emit_json({"dry_run": True, "action": action, "identity": identity, "summary": plan.summary,
                       "calls": [c.to_dict() for c in plan.calls], "cli": [c.cli() for c in plan.calls]})
        else:
            console.print(styled((plain(action), "bold"), f" on {plain(identity)}: {plain(plan.summary)}"))
            _print_calls(plan.calls)
            console.print("dry-run: nothing was changed; add --execute to make the change.")
        return
    store = open_store(home, as_json)
    try:
        responder = _responder(store, profile, role_name, external_id, protect or [], as_json)
        try:
            outcome = responder.execute(plan, reason=reason, incident_id=incident)
        except ActionError as exc:
            raise fail(str(exc), Exit.USAGE, as_json) from None
    finally:
        store.close()
    if as_json:
        emit_json(outcome.record)
    else:
        _print_record(outcome.record)
    if outcome.record["status"] != "executed":
        raise typer.Exit(int(Exit.PARTIAL))


def _inventory_facts(home, identity: str):
    """The inventory's record of an identity (unique id, trust policy), when there is a store with one."""
    from nhiwatch.respond.playbooks import known_identity
    from nhiwatch.store.db import Store, StoreError

    try:
        store = Store(home, read_only=True)
    except StoreError:
        return None  # a dry-run needs no store: the plan says what it lacks
    try:
        return known_identity(store, identity)
    finally:
        store.close()


@respond_app.command("incident")
def respond_incident(
    incident_id: Annotated[str, typer.Argument(help="Incident id (inc-...).")],
    approve: Annotated[bool, typer.Option("--approve", help="Ask for each action and make the approved ones.")] = False,
    profile: ProfileOpt = None, role_name: RoleNameOpt = None, external_id: ExternalIdOpt = None,
    protect: ProtectOpt = None, home: HomeOpt = None, as_json: JsonOpt = False,
) -> None:
    """The incident's playbook: a dry-run, or with --approve each action confirmed in turn."""
    from nhiwatch.respond.service import incident_proposals

    if not approve:
        plan(incident_id, protect=protect, home=home, as_json=as_json)
        return
    if as_json:
        raise fail("--approve asks questions on the terminal; it cannot be combined with --json", Exit.USAGE, True)
    store = open_store(home, as_json)
    records = []
    try:
        responder = _responder(store, profile, role_name, external_id, protect or [], as_json, mode="approved")
        try:
            incident, proposals = incident_proposals(store, incident_id, protect or [], responder.own_arn)
        except LookupError as exc:
            raise fail(str(exc), Exit.USAGE) from None
        for proposal in proposals:
            _print_plan([proposal])
            if proposal.plan is None or proposal.refused or not proposal.plan.calls:
                continue
            if typer.confirm("    make this change?", default=False):
                outcome = responder.execute(proposal.plan, reason=proposal.why, incident_id=incident["id"],
                                            finding_ids=proposal.finding_ids)
                records.append(outcome.record)
                _print_record(outcome.record)
    finally:
        store.close()
    if any(r["status"] != "executed" for r in records):
        raise typer.Exit(int(Exit.PARTIAL))


@respond_app.command("auto")
def auto(
    policy: Annotated[Path, typer.Option(help="Response policy (TOML): which detectors and severities may trigger "
                                              "which actions on which identities; protected identities.")],
    execute: Annotated[bool, typer.Option("--execute", help="Make the allowed changes (default: dry-run).")] = False,
    profile: ProfileOpt = None, role_name: RoleNameOpt = None, external_id: ExternalIdOpt = None,
    protect: ProtectOpt = None, home: HomeOpt = None, as_json: JsonOpt = False,
) -> None:
    """Automatic response: the actions the policy allows on every open incident."""
    from nhiwatch.respond.policy import PolicyError, load_policy
    from nhiwatch.respond.service import auto_respond

    try:
        rules = load_policy(policy)
    except PolicyError as exc:
        raise fail(str(exc), Exit.USAGE, as_json) from None
    rules.protected += protect or []
    store = open_store(home, as_json, read_only=not execute)
    try:
        responder = _responder(store, profile, role_name, external_id, rules.protected, as_json, mode="auto") \
            if execute else None
        result = auto_respond(store, rules, responder)
    finally:
        store.close()
    if as_json:
        emit_json({"dry_run": not execute, "decisions": [d.to_dict() for d in result.decisions]})
    else:
        table = Table("incident", "action", "identity", "decision", "result")
        for d in result.decisions:
            verdict = "allowed" if d.allowed and not d.skipped else (d.skipped or "not allowed")
            outcome = d.record["status"] if d.record else ("would run" if d.allowed and not d.skipped else "")
            table.add_row(plain(d.incident_id), plain(d.proposal.kind), plain(d.proposal.identity), plain(verdict),
                          plain(outcome))
        console.print(table)
        if not execute:
            console.print("dry-run: nothing was changed; add --execute to make the allowed changes.")
    if result.failed:
        raise typer.Exit(int(Exit.PARTIAL))


@respond_app.command("list")
def list_actions(identity: Annotated[Optional[str], typer.Option(help="Only actions on this ARN.")] = None,
                 home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The audit trail: every action taken, newest first."""
    from nhiwatch.respond.executor import list_actions as query

    store = open_store(home, as_json, read_only=True)
    try:
        rows = query(store, identity=identity)
    finally:
        store.close()
    if as_json:
        emit_json({"total": len(rows), "actions": rows})
        return
    table = Table("id", "when", "action", "identity", "status", "mode", "by", "reason")
    for r in rows:
        table.add_row(*(plain(v) for v in (r["id"], r["created_at"][:19], r["kind"], r["identity"], r["status"],
                                           r["mode"], r["actor"])), plain(r.get("reason") or "", 60))
    console.print(table)


@respond_app.command("show")
def show_action(action_id: Annotated[str, typer.Argument(help="Action id (act-...).")], home: HomeOpt = None,
                as_json: JsonOpt = False) -> None:
    """One action's record: who, when, why, the state before, every call made."""
    import orjson

    from nhiwatch.respond.executor import get_action

    store = open_store(home, as_json, read_only=True)
    try:
        record = get_action(store, action_id)
    finally:
        store.close()
    if record is None:
        raise fail(f"no action {action_id}", Exit.USAGE, as_json)
    if as_json:
        emit_json(record)
    else:
        console.print(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())  # JSON: controls escaped


@respond_app.command("undo")
def undo(action_id: Annotated[str, typer.Argument(help="Action id (act-...).")],
         execute: Annotated[bool, typer.Option("--execute", help="Make the change (default: dry-run).")] = False,
         profile: ProfileOpt = None, role_name: RoleNameOpt = None, external_id: ExternalIdOpt = None,
         home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Put back what an action changed, from the state it recorded before."""
    from nhiwatch.respond.actions import ACTIONS, ActionError, Call
    from nhiwatch.respond.executor import get_action, plan_of, undoable

    store = open_store(home, as_json, read_only=not execute)
    try:
        record = get_action(store, action_id)
        if record is None:  # an unknown id is a usage error (exit 2), whatever the credentials
            raise fail(f"no action {action_id} (nhiwatch respond list)", Exit.USAGE, as_json)
        if execute:
            try:
                undoable(store, action_id)  # nothing to undo: said before AWS is asked
            except ActionError as exc:
                raise fail(str(exc), Exit.USAGE, as_json) from None
        if not execute:
            calls = ACTIONS[record["kind"]].undo(plan_of(record), record["before"] or {},
                                                 [Call.from_dict(c) for c in record["done"]])
            shown = [c.redacted() for c in calls]
            if as_json:
                emit_json({"dry_run": True, "action_id": action_id, "status": record["status"],
                           "calls": [c.to_dict() for c in shown], "cli": [c.cli() for c in shown]})
            else:
                console.print(f"undo {plain(action_id)} ({plain(record['kind'])} on {plain(record['identity'])}, "
                              f"{plain(record['status'])}):")
                _print_calls(shown)
                if not shown:
                    console.print("    nothing to put back")
                console.print("dry-run: nothing was changed; add --execute to undo.")
            return
        responder = _responder(store, profile, role_name, external_id, [], as_json)
        try:
            outcome = responder.undo(action_id)
        except ActionError as exc:
            raise fail(str(exc), Exit.USAGE, as_json) from None
    finally:
        store.close()
    if as_json:
        emit_json({**outcome.record, "one_time_password": outcome.secret})
    else:
        _print_record(outcome.record, outcome.secret)
    if outcome.record["status"] != "undone":
        raise typer.Exit(int(Exit.PARTIAL))
