"""A CI/CD role assumed through OIDC by a repository or branch it never saw; a new *owner*
(another GitHub organisation or GitLab group) is what a too-broad trust policy lets in."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look
from nhiwatch.detect.features import github_owner


class NewWebIdentitySubject(Detector):
    id = "new-web-identity-subject"
    title = "Role assumed by a new OIDC subject"
    tactic = "initial-access"
    mitre = ("T1078.004", "T1199")
    change_aware = True  # a trust update that allows the subject explains it
    guardduty = ("InitialAccess:IAMUser/AnomalousBehavior",)
    description = ("AssumeRoleWithWebIdentity with a `sub` the role never accepted. High when the owner "
                   "(organisation or group) is new too; low for a new repository or branch of a known owner "
                   "(new projects start every week).")
    behavioural = False

    cases = (
        c.positive("foreign-github-org-assumes-the-deploy-role",
                   "a trust policy that checks only the audience lets a repository of another GitHub organisation "
                   "assume the deploy role",
                   [c.web_identity_assume(c.at(0), c.GH_ROLE, "repo:evil-org/payload:ref:refs/heads/main")],
                   [c.GH_HABIT], identity=c.GH_ROLE, severity="high"),
        c.negative("new-repository-of-the-same-org",
                   "a new repository of the company's own GitHub organisation starts deploying with the role",
                   [c.web_identity_assume(c.at(0), c.GH_ROLE, "repo:acme/billing-service:ref:refs/heads/main")],
                   [c.GH_HABIT], identity=c.GH_ROLE),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if not ev.inbound or ev.error or ev.name != "AssumeRoleWithWebIdentity" or not ev.subject:
            return
        if profile.knows("subject", ev.subject) or profile.seen["subject"] == 0:
            return
        owner = github_owner(ev.subject)
        new_owner = owner is not None and not profile.knows("subject_owner", owner)
        known = ", ".join(s for s, _ in profile.top("subject", 3))
        severity = "high" if new_owner else "low"
        yield Hit(severity, 0.9 if new_owner else 0.3,
                  f"{look.info.arn} was assumed through OIDC by {ev.subject}"
                  + (f", from owner {owner} it never trusted before" if new_owner else "")
                  + f" (it knew {known}) from {ev.ip}.",
                  {"subject": ev.subject, "owner": owner, "new_owner": new_owner,
                   "known_subjects": [s for s, _ in profile.top("subject", 10)]}, key=ev.subject)
