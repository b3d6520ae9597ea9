"""Resolve CloudTrail's userIdentity into the stable principal users reason about.

An assumed-role session ARN changes with every session; the role behind it does not. So the
principal of an AssumedRole call is the session issuer's role ARN, and the volatile part
(function name, instance id, CI job id) goes to `session`.
"""

from __future__ import annotations

from typing import NamedTuple


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
    attributes = _d(context.get("attributes"))
    web_fed = _d(context.get("webIdFederationData"))
    return stable._replace(
        access_key_id=as_text(ui.get("accessKeyId")),
        mfa_authenticated=_flag(attributes.get("mfaAuthenticated")),
        session_created=as_text(attributes.get("creationDate")),
        source_identity=as_text(context.get("sourceIdentity")) or as_text(ui.get("sourceIdentity")),
        web_identity_provider=as_text(web_fed.get("federatedProvider")) or stable.web_identity_provider,
    )


def _resolve(user_identity: object, event_source: str | None, event_type: str | None) -> ResolvedIdentity:
    if not isinstance(user_identity, dict) or not user_identity:
        if event_type == "AwsServiceEvent" and event_source:
            return NO_IDENTITY._replace(principal=event_source, principal_type="service", principal_name=event_source)
        return NO_IDENTITY

    ui = user_identity
    kind = as_text(ui.get("type"))
    arn = as_text(ui.get("arn"))
    account = as_text(ui.get("accountId"))
    principal_id = as_text(ui.get("principalId"))
    user_name = as_text(ui.get("userName"))
    invoked_by = as_text(ui.get("invokedBy"))
    context = _d(ui.get("sessionContext"))
    attributes = _d(context.get("attributes"))
    issuer = _d(context.get("sessionIssuer"))
    web_fed = _d(context.get("webIdFederationData"))
    base = ResolvedIdentity(
        identity_type=kind,
        principal=None,
        principal_type="unknown",
        principal_account=account,
        principal_name=None,
        arn=arn,
        session=None,
        access_key_id=as_text(ui.get("accessKeyId")),
        invoked_by=invoked_by,
        mfa_authenticated=_flag(attributes.get("mfaAuthenticated")),
        session_created=as_text(attributes.get("creationDate")),
        source_identity=as_text(context.get("sourceIdentity")) or as_text(ui.get("sourceIdentity")),
        web_identity_provider=as_text(web_fed.get("federatedProvider")),
    )

    if kind == "AssumedRole":
        issuer_arn = as_text(issuer.get("arn"))
        from_session = role_arn_from_session_arn(arn) if arn else None
        session = from_session[2] if from_session else None
        if session is None and principal_id and ":" in principal_id:
            session = principal_id.split(":", 1)[1] or None
        if issuer_arn:
            principal, name = issuer_arn, as_text(issuer.get("userName")) or _arn_tail(issuer_arn)
            owner = as_text(issuer.get("accountId")) or account
        elif from_session:
            principal, name = from_session[0], from_session[1]
            owner = split_arn(arn)[2] if arn else account  # type: ignore[index]
        else:
            # No ARN at all: the role's unique id (AROA...) is still stable.
            role_id = principal_id.split(":", 1)[0] if principal_id else None
            principal = f"role-id:{role_id}" if role_id else None
            name, owner = role_id, account
        return base._replace(principal=principal, principal_type="role", principal_name=name,
                             principal_account=owner or account, session=session)

    if kind == "IAMUser":
        principal = arn or (f"arn:aws:iam::{account}:user/{user_name}" if account and user_name else None)
        return base._replace(principal=principal or principal_id, principal_type="user",
                             principal_name=user_name or _arn_tail(arn))

    if kind == "Root":
        principal = arn or (f"arn:aws:iam::{account}:root" if account else None)
        return base._replace(principal=principal, principal_type="root", principal_name="root")

    if kind == "FederatedUser":
        # GetFederationToken sessions: the stable identity is the user (or root) that issued them.
        issuer_arn = as_text(issuer.get("arn"))
        session = _arn_tail(arn)
        if session is None and principal_id and ":" in principal_id:
            session = principal_id.split(":", 1)[1]
        issuer_is_root = bool(issuer_arn and issuer_arn.endswith(":root"))
        return base._replace(
            principal=issuer_arn or arn, principal_type="root" if issuer_is_root else "user",
            principal_name=as_text(issuer.get("userName")) or _arn_tail(issuer_arn) or session, session=session)

    if kind == "AWSService":
        service = invoked_by or event_source
        return base._replace(principal=service, principal_type="service", principal_name=service)

    if kind == "AWSAccount":
        caller_id = principal_id.split(":", 1)[0] if principal_id else None
        principal = f"aws-account:{account}" + (f"/{caller_id}" if caller_id else "") if account else principal_id
        session = principal_id.split(":", 1)[1] if principal_id and ":" in principal_id else None
        return base._replace(principal=principal, principal_type="aws_account", principal_name=caller_id or account,
                             session=session)

    if kind in ("WebIdentityUser", "SAMLUser"):
        provider = as_text(ui.get("identityProvider")) or ""
        provider = short_provider(provider) if kind == "WebIdentityUser" else provider
        subject = user_name or principal_id
        return base._replace(
            principal=f"{provider}:{subject}" if provider else subject,
            principal_type="web_identity" if kind == "WebIdentityUser" else "saml",
            principal_name=subject, web_identity_provider=provider or None, principal_account=account)

    if kind == "IdentityCenterUser":
        on_behalf = _d(ui.get("onBehalfOf"))
        user_id = as_text(on_behalf.get("userId")) or user_name or principal_id
        return base._replace(principal=arn or (f"identity-center:{user_id}" if user_id else None),
                             principal_type="identity_center", principal_name=user_name or user_id)

    if kind is None and invoked_by:
        # Service events carry only {accountId, invokedBy}.
        return base._replace(principal=invoked_by, principal_type="service", principal_name=invoked_by)

    # "Unknown" (failed sign-ins, hidden names) and types AWS may add later: keep what is there.
    name = user_name or _arn_tail(arn) or principal_id
    principal = arn or (f"unknown:{account}:{name}" if account and name else name)
    return base._replace(principal=principal, principal_type="unknown", principal_name=name)
