"""Every detector, in one list. docs/detectors.md is generated from their metadata."""

from __future__ import annotations

from nhiwatch.detect.detectors.access_denied_probing import AccessDeniedProbing
from nhiwatch.detect.detectors.attack_sequence import AttackSequence
from nhiwatch.detect.detectors.attack_tool_agent import AttackToolAgent
from nhiwatch.detect.detectors.base import Detector, validate_detectors
from nhiwatch.detect.detectors.bulk_s3_download import BulkS3Download
from nhiwatch.detect.detectors.bulk_secret_access import BulkSecretAccess
from nhiwatch.detect.detectors.credential_access import CredentialAccess
from nhiwatch.detect.detectors.defense_evasion import DefenseEvasion
from nhiwatch.detect.detectors.discovery_first_use import DiscoveryFirstUse
from nhiwatch.detect.detectors.enumeration import Enumeration
from nhiwatch.detect.detectors.escalation_route import EscalationRouteWalked
from nhiwatch.detect.detectors.iam_permission_change import IamPermissionChange
from nhiwatch.detect.detectors.exfiltration_first_use import ExfiltrationFirstUse
from nhiwatch.detect.detectors.impact import Impact
from nhiwatch.detect.detectors.initial_access import InitialAccess
from nhiwatch.detect.detectors.instance_credentials import InstanceCredentialsElsewhere
from nhiwatch.detect.detectors.lateral_movement import LateralMovement
from nhiwatch.detect.detectors.mass_deletion import MassDeletion
from nhiwatch.detect.detectors.new_assumer import NewAssumer
from nhiwatch.detect.detectors.novel_api import NovelApi
from nhiwatch.detect.detectors.off_cloud_use import OffCloudUse
from nhiwatch.detect.detectors.persistence import Persistence
from nhiwatch.detect.detectors.privilege_escalation import PrivilegeEscalation
from nhiwatch.detect.detectors.resource_shared_externally import ResourceSharedExternally
from nhiwatch.detect.detectors.role_chaining import RoleChainCrossAccount
from nhiwatch.detect.detectors.root_usage import RootUsage
from nhiwatch.detect.detectors.unfamiliar_context import UnfamiliarContext
from nhiwatch.detect.detectors.unusual_hour import UnusualHour
from nhiwatch.detect.detectors.unusual_instances import UnusualInstances
from nhiwatch.detect.detectors.unusual_region import UnusualRegion
from nhiwatch.detect.detectors.volume_burst import VolumeBurst
from nhiwatch.detect.detectors.web_identity_subject import NewWebIdentitySubject
from nhiwatch.detect.detectors.workload_outside_runtime import WorkloadOutsideRuntime

DETECTORS: tuple[Detector, ...] = tuple(cls() for cls in (
    WorkloadOutsideRuntime, InstanceCredentialsElsewhere, OffCloudUse, UnfamiliarContext, AttackToolAgent, NewWebIdentitySubject,
    InitialAccess,
    RootUsage, Enumeration, AccessDeniedProbing, DiscoveryFirstUse, CredentialAccess, BulkSecretAccess,
    IamPermissionChange, EscalationRouteWalked, PrivilegeEscalation, Persistence, LateralMovement, RoleChainCrossAccount, NewAssumer, DefenseEvasion,
    UnusualRegion, ExfiltrationFirstUse, ResourceSharedExternally, BulkS3Download, Impact, UnusualInstances,
    MassDeletion, VolumeBurst, UnusualHour, NovelApi,
    AttackSequence))  # last: it reads the steps the others recorded for the same event
validate_detectors(DETECTORS)  # a bad id, tactic or ATT&CK id stops the import, with every problem named
