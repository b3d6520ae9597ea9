"""Acting in each account of an organisation: the caller's own credentials in its own account, an
assumed role in every other one.

Security Hub files a finding in the account whose credentials import it, and accepts a finding of its
default product only from that finding's own account. A tool that runs in one account and reports on
many therefore needs a role in each: named by a template (`role_arn`, with `{account}` where the
account id goes), or per account (`roles`), optionally with an external id and an allow-list of
accounts. Assumed credentials are kept per account and renewed a few minutes before they expire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

from nhiwatch.core.arn import account_of
from nhiwatch.core.registry import Table

ACCOUNT_ID = re.compile(r"^\d{12}$")
ACCOUNT_PLACEHOLDER = "{account}"
# arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME (IAM's characters for paths and names).
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
# STS: 2 to 1224 characters of letters, digits and +=,.@:/-
EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
SAMPLE_ACCOUNT = "000000000000"  # fills the template when checking where its account goes
# Errors that say "not now" rather than "no": throttling and the service's own failures.
TRANSIENT_CODES = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
                             "RequestLimitExceeded", "LimitExceededException", "RequestThrottled",
                             "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
                             "InternalException", "ServiceUnavailable", "ServiceUnavailableException"})


def is_transient(code: str, http_status: int | None = None) -> bool:
    """Whether an AWS error code (and HTTP status) is worth retrying."""
    return code in TRANSIENT_CODES or "Throttl" in code or (http_status or 0) >= 500 or http_status == 429


def client_error(exc: Exception) -> tuple[str, str, bool]:
    """(code, message, transient) of a botocore error; connection errors are transient."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code, str(error.get("Message", "")), is_transient(code, status)
    return type(exc).__name__, str(exc), True


class AccountUnreachable(Exception):
    """An account this process cannot act in: no role for it, or its role refused. `permanent` unless
    retrying may help (throttled, STS unreachable)."""

    def __init__(self, account: str, reason: str, permanent: bool = True) -> None:
        super().__init__(reason)
        self.account = account
        self.permanent = permanent


@dataclass(frozen=True)
class AccountRoles:
    """Which role reaches which account, as a sink's table configures it."""

    template: str | None = None                           # role_arn, with {account}
    roles: Mapping[str, str] = field(default_factory=dict)  # account -> role ARN, overriding the template
    external_id: str | None = None
    allowed: frozenset[str] | None = None                 # accounts; None: any account a role reaches

    @classmethod
    def from_table(cls, table: Table) -> AccountRoles | None:
        """Read role_arn, roles, external_id and accounts; None (problems noted) when one is wrong."""
        before = len(table.problems)
        template = table.get("role_arn")
        if template is not None and not _template_ok(template):
            table.problem("role_arn", "must be an IAM role ARN whose account is {account}, e.g. "
                                      "\"arn:aws:iam::{account}:role/NhiwatchSecurityHubImport\" "
                                      f"(name a role of one account under roles), not {template!r}")
        roles: dict[str, str] = {}
        raw_roles = table.get("roles", {})
        if not isinstance(raw_roles, dict):
            table.problem("roles", "must be a table of account id = role ARN, e.g. "
                                   "roles = { \"111122223333\" = \"arn:aws:iam::111122223333:role/Import\" }")
            raw_roles = {}
        for account, arn in raw_roles.items():
            where = f"roles.{account}"
            if not ACCOUNT_ID.match(str(account)):
                table.problem(where, "the key must be a 12-digit account id (quoted)")
            elif not isinstance(arn, str) or not ROLE_ARN.match(arn):
                table.problem(where, f"must be an IAM role ARN (arn:aws:iam::{account}:role/NAME), not {arn!r}")
            elif account_of(arn) != account:
                # AWS takes a finding only from its own account: a role elsewhere would be refused.
                table.problem(where, f"the role {arn} is in account {account_of(arn)}; it must be in {account}, "
                                     "the account whose findings it imports")
            else:
                roles[account] = arn
        external_id = table.get("external_id")
        if external_id is not None and (not isinstance(external_id, str) or not EXTERNAL_ID.match(external_id)):
            table.problem("external_id", "must be 2 to 1224 letters, digits or +=,.@:/- (as STS takes it)")
        allowed = None
        if "accounts" in table:
            accounts = table["accounts"]
            if not isinstance(accounts, list) or not all(isinstance(a, str) and ACCOUNT_ID.match(a) for a in accounts):
                table.problem("accounts", "must be a list of 12-digit account ids (quoted strings), "
                                          f"not {accounts!r}")
            else:
                allowed = frozenset(accounts)
                for account in sorted(set(roles) - allowed):
                    table.problem(f"roles.{account}", "names an account missing from accounts")
        if len(table.problems) > before:
            return None
        return cls(template, roles, external_id, allowed)

    def role_for(self, account: str) -> str | None:
        """The role to assume for the account: its own entry, else the template's."""
        if account in self.roles:
            return self.roles[account]
        return self.template.replace(ACCOUNT_PLACEHOLDER, account) if self.template else None

    def configured_accounts(self) -> list[str]:
        """The accounts the configuration names (the allow-list, else those with a role of their own)."""
        return sorted(self.allowed if self.allowed is not None else self.roles)

    def hint(self, account: str) -> str:
        """What to configure so the account can be reached."""
        return (f"set role_arn = \"arn:aws:iam::{{account}}:role/NAME\" (a role in every member account) or "
                f"roles = {{ \"{account}\" = \"arn:aws:iam::{account}:role/NAME\" }}")

    def describe(self) -> str:
        parts = []
        if self.template:
            parts.append(f"role {self.template}")
        if self.roles:
            parts.append(f"roles of their own for {_count(len(self.roles), 'account')}")
        if self.allowed is not None:
            parts.append(f"only {_count(len(self.allowed), 'other account')}")
        return ", ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _template_ok(template: object) -> bool:
    if not isinstance(template, str) or template.count(ACCOUNT_PLACEHOLDER) != 1:
        return False
    sample = template.replace(ACCOUNT_PLACEHOLDER, SAMPLE_ACCOUNT)
    # {account} must be the ARN's account field: a role named after the account, in one account, would
    # import every account's findings from that one and be refused.
    return bool(ROLE_ARN.match(sample)) and account_of(sample) == SAMPLE_ACCOUNT and "{" not in sample


@dataclass
class _Assumed:
    session: Any
    expires: datetime
    clients: dict[str, Any] = field(default_factory=dict)


class AccountSessions:
    """boto3 sessions acting in each account: the caller's own for its account, an assumed role's for
    the others. One thread uses an instance (a sink's sender, or `config check`)."""

    refresh_margin = timedelta(minutes=5)  # renew assumed credentials this long before they expire

    def __init__(self, roles: AccountRoles, region: str | None, session_name: str, own_account: str | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        import boto3

        self.roles = roles
        self.session_name = session_name
        self.own = boto3.session.Session(region_name=region)
        self.region: str = region or self.own.region_name or "us-east-1"
        self._own_account = own_account
        self._own_clients: dict[str, Any] = {}
        self._assumed: dict[str, _Assumed] = {}
        self._now = now

    @property
    def own_account(self) -> str:
        """The caller's account (STS GetCallerIdentity, asked once), unless configured."""
        if self._own_account is None:
            self._own_account = str(self._client(self.own, "sts").get_caller_identity()["Account"])
        return self._own_account

    def _client(self, session: Any, service: str) -> Any:
        from botocore.config import Config

        return session.client(service, region_name=self.region,
                              config=Config(retries={"mode": "standard", "max_attempts": 4}))

    def via(self, account: str) -> str:
        """How the account is reached, for reports."""
        if account == self.own_account:
            return "own credentials"
        return self.roles.role_for(account) or "no role"

    def client(self, service: str, account: str) -> Any:
        """A client acting in `account`; raises AccountUnreachable when no configured role gets there."""
        if account == self.own_account:
            if service not in self._own_clients:
                self._own_clients[service] = self._client(self.own, service)
            return self._own_clients[service]
        if self.roles.allowed is not None and account not in self.roles.allowed:
            raise AccountUnreachable(account, f"account {account} is not in this sink's accounts "
                                              f"({', '.join(sorted(self.roles.allowed)) or 'none'}); add it there")
        assumed = self._assumed.get(account)
        if assumed is None or assumed.expires - self.refresh_margin <= self._now():
            assumed = self._assume(account)
            self._assumed[account] = assumed
        if service not in assumed.clients:
            assumed.clients[service] = self._client(assumed.session, service)
        return assumed.clients[service]

    def _assume(self, account: str) -> _Assumed:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        role = self.roles.role_for(account)
        if role is None:
            raise AccountUnreachable(account, f"account {account} is not the account nhiwatch runs in "
                                              f"({self.own_account}) and no role is configured for it: "
                                              f"{self.roles.hint(account)}")
        request: dict[str, Any] = {"RoleArn": role, "RoleSessionName": self.session_name}
        if self.roles.external_id:
            request["ExternalId"] = self.roles.external_id
        try:
            answer = self._client(self.own, "sts").assume_role(**request)
        except (ClientError, BotoCoreError) as exc:
            code, message, transient = client_error(exc)
            reason = (f"cannot assume {role} for account {account}: {code}: {message}".rstrip(": ") +
                      ("" if transient else f" (the role must exist in {account} and trust account "
                                            f"{self.own_account}" +
                                            (" with the configured external_id)" if self.roles.external_id else ")")))
            raise AccountUnreachable(account, reason, permanent=not transient) from None
        credentials = answer["Credentials"]
        session = boto3.session.Session(aws_access_key_id=credentials["AccessKeyId"],
                                        aws_secret_access_key=credentials["SecretAccessKey"],
                                        aws_session_token=credentials["SessionToken"], region_name=self.region)
        expires = credentials["Expiration"]
        if isinstance(expires, str):
            expires = datetime.fromisoformat(expires.replace("Z", "+00:00"))
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=timezone.utc)
        return _Assumed(session, expires)
