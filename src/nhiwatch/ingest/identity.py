"""Resolve CloudTrail's userIdentity into the stable principal users reason about.

An assumed-role session ARN changes with every session; the role behind it does not. So the
principal of an AssumedRole call is the session issuer's role ARN, and the volatile part
(function name, instance id, CI job id) goes to `session`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple


class ResolvedIdentity(NamedTuple):
    identity_type: str | None
    principal: str | None
    principal_type: str
    principal_account: str | None
    principal_name: str | None
    arn: str | None
    session: str | None
    access_key_id: str | None
    invoked_by: str | None
    mfa_authenticated: bool | None
    session_created: str | None
    source_identity: str | None
    web_identity_provider: str | None


NO_IDENTITY = ResolvedIdentity(None, None, "none", None, None, None, None, None, None, None, None, None, None)


def as_text(value: object) -> str | None:
    """A non-empty string, or None (CloudTrail fields are sometimes '', {} or numbers)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _d(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.lower()
        if low == "true":
            return True
        if low == "false":
            return False
    return None


def split_arn(arn: str) -> tuple[str, str, str, str] | None:
    """(partition, service, account, resource) of an ARN, or None if it is not one."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return parts[1], parts[2], parts[4], parts[5]


def role_arn_from_session_arn(session_arn: str) -> tuple[str, str, str | None] | None:
    """arn:aws:sts::1:assumed-role/Name/sess -> (arn:aws:iam::1:role/Name, Name, sess).

    The role path is not in the session ARN; the session issuer has it when present.
    """
    parsed = split_arn(session_arn)
    if not parsed:
        return None
    partition, _service, account, resource = parsed
    if not resource.startswith("assumed-role/"):
        return None
    pieces = resource.split("/")
    name = pieces[1] if len(pieces) > 1 else ""
    if not name:
        return None
    session = "/".join(pieces[2:]) or None
    return f"arn:{partition}:iam::{account}:role/{name}", name, session


def short_provider(provider: str) -> str:
    """arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com -> the host."""
    marker = ":oidc-provider/"
    idx = provider.find(marker)
    return provider[idx + len(marker):] if idx >= 0 else provider


def _arn_tail(arn: str | None) -> str | None:
    if not arn:
        return None
    return arn.rsplit("/", 1)[-1] or None


_CACHE: dict[tuple, ResolvedIdentity] = {}


def _session_fields(ui: dict) -> dict:
    """The fields that change with every session of the same principal (so are never cached)."""
    context = _d(ui.get("sessionContext"))
    attributes = _d(context.get("attributes"))
    web_fed = _d(context.get("webIdFederationData"))
    return {
        "access_key_id": as_text(ui.get("accessKeyId")),
        "mfa_authenticated": _flag(attributes.get("mfaAuthenticated")),
        "session_created": as_text(attributes.get("creationDate")),
        "source_identity": as_text(context.get("sourceIdentity")) or as_text(ui.get("sourceIdentity")),
        "web_identity_provider": as_text(web_fed.get("federatedProvider")),
    }


def resolve(user_identity: object, event_source: str | None, event_type: str | None) -> ResolvedIdentity:
    """Resolve one userIdentity. The stable part is cached: a role's sessions repeat all day."""
    if not isinstance(user_identity, dict) or not user_identity:
        return _resolve(user_identity, event_source, event_type)
    ui = user_identity
    context = ui.get("sessionContext")
    context = context if isinstance(context, dict) else {}
    issuer = context.get("sessionIssuer")
    key = (ui.get("type"), ui.get("arn"), ui.get("accountId"), ui.get("principalId"), ui.get("userName"),
           ui.get("invokedBy"), ui.get("identityProvider"), event_source, event_type,
           repr(issuer) if issuer else None, repr(ui.get("onBehalfOf")) if "onBehalfOf" in ui else None)
    try:
        stable = _CACHE.get(key)
    except TypeError:  # unhashable oddities (lists where strings belong): no caching
        return _resolve(user_identity, event_source, event_type)
    if stable is None:
        stable = _resolve(user_identity, event_source, event_type)
        if len(_CACHE) >= 50_000:
            _CACHE.clear()
        _CACHE[key] = stable
    volatile = _session_fields(ui)
    # A cached web identity keeps its provider when this session's context does not name one.
    volatile["web_identity_provider"] = volatile["web_identity_provider"] or stable.web_identity_provider
    return stable._replace(**volatile)


class _Caller(NamedTuple):
    """The userIdentity fields resolution reads, each already a non-empty string or None."""

    ui: dict
    kind: str | None
    arn: str | None
    account: str | None
    principal_id: str | None
    user_name: str | None
    invoked_by: str | None
    issuer: dict
    event_source: str | None

    @classmethod
    def read(cls, ui: dict, event_source: str | None) -> "_Caller":
        return cls(ui, as_text(ui.get("type")), as_text(ui.get("arn")), as_text(ui.get("accountId")),
                   as_text(ui.get("principalId")), as_text(ui.get("userName")), as_text(ui.get("invokedBy")),
                   _d(_d(ui.get("sessionContext")).get("sessionIssuer")), event_source)

    def base(self) -> ResolvedIdentity:
        """What every kind of caller shares; each resolver below fills in the principal."""
        return ResolvedIdentity(identity_type=self.kind, principal=None, principal_type="unknown",
                                principal_account=self.account, principal_name=None, arn=self.arn, session=None,
                                invoked_by=self.invoked_by, **_session_fields(self.ui))


def _id_part(principal_id: str | None) -> str | None:
    """'AROA...:session' -> 'AROA...' (the stable unique id before the colon)."""
    return principal_id.split(":", 1)[0] if principal_id else None


def _session_part(principal_id: str | None) -> str | None:
    """'AROA...:session' -> 'session' ('' when nothing follows the colon), None without a colon."""
    return principal_id.split(":", 1)[1] if principal_id and ":" in principal_id else None


def _role_behind_session(c: _Caller, from_session: tuple[str, str, str | None] | None) -> tuple:
    """(role ARN or id, role name, owning account) of an assumed-role session, from the best source."""
    issuer_arn = as_text(c.issuer.get("arn"))
    if issuer_arn:  # the session issuer knows the role's path, which the session ARN drops
        return issuer_arn, as_text(c.issuer.get("userName")) or _arn_tail(issuer_arn), \
            as_text(c.issuer.get("accountId")) or c.account
    if from_session:
        return from_session[0], from_session[1], split_arn(c.arn)[2]  # type: ignore[arg-type,index]
    # No ARN at all: the role's unique id (AROA...) is still stable.
    role_id = _id_part(c.principal_id)
    return (f"role-id:{role_id}" if role_id else None), role_id, c.account


def _assumed_role(c: _Caller, base: ResolvedIdentity) -> ResolvedIdentity:
    from_session = role_arn_from_session_arn(c.arn) if c.arn else None
    session = (from_session[2] if from_session else None) or _session_part(c.principal_id) or None
    principal, name, owner = _role_behind_session(c, from_session)
    return base._replace(principal=principal, principal_type="role", principal_name=name,
                         principal_account=owner or c.account, session=session)


def _iam_user(c: _Caller, base: ResolvedIdentity) -> ResolvedIdentity:
    built = f"arn:aws:iam::{c.account}:user/{c.user_name}" if c.account and c.user_name else None
    return base._replace(principal=c.arn or built or c.principal_id, principal_type="user",
                         principal_name=c.user_name or _arn_tail(c.arn))


def _root(c: _Caller, base: ResolvedIdentity) -> ResolvedIdentity:
    principal = c.arn or (f"arn:aws:iam::{c.account}:root" if c.account else None)
    return base._replace(principal=principal, principal_type="root", principal_name="root")


def _federated_user(c: _Caller, base: ResolvedIdentity) -> ResolvedIdentity:
    # GetFederationToken sessions: the stable identity is the user (or root) that issued them.
    issuer_arn = as_text(c.issuer.get("arn"))
    session = _arn_tail(c.arn) or _session_part(c.principal_id)
    issuer_is_root = bool(issuer_arn and issuer_arn.endswith(":root"))
    return base._replace(
        principal=issuer_arn or c.arn, principal_type="root" if issuer_is_root else "user",
        principal_name=as_text(c.issuer.get("userName")) or _arn_tail(issuer_arn) or session, session=session)


def _aws_service(c: _Caller, base: ResolvedIdentity) -> ResolvedIdentity:
    service = c.invoked_by or c.event_source
    return base._replace(principal=service, principal_type="service", principal_name=service)


def _aws_account(c: _Caller, base: ResolvedIdentity) -> ResolvedIdentity:
    caller_id = _id_part(c.principal_id)
    principal = f"aws-account:{c.account}" + (f"/{caller_id}" if caller_id else "") if c.account else c.principal_id
    return base._replace(principal=principal, principal_type="aws_account", principal_name=caller_id or c.account,
                         session=_session_part(c.principal_id))


def _federated_subject(principal_type: str, short: bool) -> Callable[[_Caller, ResolvedIdentity], ResolvedIdentity]:
    """Web identity and SAML users: '<provider>:<subject>', the provider shortened to its host for OIDC."""
    def resolve_subject(c: _Caller, base: ResolvedIdentity) -> ResolvedIdentity:
        provider = as_text(c.ui.get("identityProvider")) or ""
        provider = short_provider(provider) if short else provider
        subject = c.user_name or c.principal_id
        return base._replace(principal=f"{provider}:{subject}" if provider else subject,
                             principal_type=principal_type, principal_name=subject,
                             web_identity_provider=provider or None, principal_account=c.account)
    return resolve_subject


def _identity_center_user(c: _Caller, base: ResolvedIdentity) -> ResolvedIdentity:
    user_id = as_text(_d(c.ui.get("onBehalfOf")).get("userId")) or c.user_name or c.principal_id
    return base._replace(principal=c.arn or (f"identity-center:{user_id}" if user_id else None),
                         principal_type="identity_center", principal_name=c.user_name or user_id)


def _other(c: _Caller, base: ResolvedIdentity) -> ResolvedIdentity:
    if c.kind is None and c.invoked_by:
        # Service events carry only {accountId, invokedBy}.
        return base._replace(principal=c.invoked_by, principal_type="service", principal_name=c.invoked_by)
    # "Unknown" (failed sign-ins, hidden names) and types AWS may add later: keep what is there.
    name = c.user_name or _arn_tail(c.arn) or c.principal_id
    principal = c.arn or (f"unknown:{c.account}:{name}" if c.account and name else name)
    return base._replace(principal=principal, principal_type="unknown", principal_name=name)


# userIdentity.type -> how its stable principal is found; any other type goes to _other.
_RESOLVERS: dict[str | None, Callable[[_Caller, ResolvedIdentity], ResolvedIdentity]] = {
    "AssumedRole": _assumed_role,
    "IAMUser": _iam_user,
    "Root": _root,
    "FederatedUser": _federated_user,
    "AWSService": _aws_service,
    "AWSAccount": _aws_account,
    "WebIdentityUser": _federated_subject("web_identity", short=True),
    "SAMLUser": _federated_subject("saml", short=False),
    "IdentityCenterUser": _identity_center_user,
}


def _resolve(user_identity: object, event_source: str | None, event_type: str | None) -> ResolvedIdentity:
    """The stable part of a userIdentity: who the principal is, whatever the session."""
    if not isinstance(user_identity, dict) or not user_identity:
        if event_type == "AwsServiceEvent" and event_source:
            return NO_IDENTITY._replace(principal=event_source, principal_type="service", principal_name=event_source)
        return NO_IDENTITY
    caller = _Caller.read(user_identity, event_source)
    return _RESOLVERS.get(caller.kind, _other)(caller, caller.base())
