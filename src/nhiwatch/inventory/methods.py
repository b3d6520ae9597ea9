"""Privilege-escalation methods as edges of the principal graph (inventory/graph.py).

Every path of the pathfinding.cloud catalogue is a method here under its id (`iam-002`, `lambda-001`...);
nhiwatch's earlier method names stay as aliases, and the few methods the catalogue lacks keep them as
their ids. Each method says which edge it makes and which permission each step needs on which resource:

- `assume`: the caller assumes a role (its permission and the role's trust policy);
- `mint`: the caller mints credentials of another user (access key, console password);
- `trust`: the caller rewrites a role's trust policy to name itself, then assumes the role;
- `write`: the caller writes the permissions of a principal (its inline or managed policies, its
  groups' policies, a managed policy it holds); it gains them when it can act as that principal;
- `join`: the caller adds a user to a group;
- `pass`: the caller passes a role to a new resource of a service that then runs as the role (the role
  must trust the service; `iam:PassedToService` is in the request);
- `existing`: the caller takes over an existing resource of a service, which may run as any role that
  trusts the service (existing resources are not in IAM exports, so any such role is a candidate; a
  name pattern under which the caller may also create such resources (`creates`) is taken to hold its
  own resources, not a privileged workload's);
- `combo`: two methods on one target (write, then act), named as the catalogue names the pair.

A step is `action@on`: `on` is `target` (the principal acted upon), `group` (a group of the target),
`policy` (a managed policy the target holds), `role` (the role passed), or a slot name for a resource
the caller creates or picks (`function`, `stack`...): steps sharing a slot must be allowed on one
resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from nhiwatch.inventory.policy import Grant, PermissionSet

ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
EDGE_KINDS = ("assume", "mint", "trust", "write", "join", "pass", "existing", "combo")
SPECIAL_TARGETS = ("target", "group", "policy", "role")


@dataclass(frozen=True)
class Step:
    action: str
    on: str


@dataclass(frozen=True)
class Method:
    id: str
    title: str
    category: str              # the catalogue's: self-escalation, principal-access, new-passrole, existing-passrole
    edge: str                  # one of EDGE_KINDS
    steps: tuple[Step, ...]
    services: tuple[str, ...] = ()      # pass/existing: service principals the role may trust (any of them)
    passed_to: str | None = None        # pass: the iam:PassedToService value
    instance_profile: bool = False      # the role must be in an instance profile (EC2 runs it)
    aliases: tuple[str, ...] = ()       # nhiwatch's earlier names for it
    combines: tuple[str, str] = ("", "")  # combo: (write method, act method)
    catalogue: bool = True              # a pathfinding.cloud path (False: nhiwatch's own addition)
    creates: str = ""                   # existing: the action creating such a resource (see graph._slot)

    @cached_property
    def actions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.action for s in self.steps))

    @cached_property
    def lowered(self) -> tuple[str, ...]:
        """The actions lowercased, as the evaluator and Node.holds take them."""
        return tuple(a.lower() for a in self.actions)

    @cached_property
    def slots(self) -> dict[str, tuple[str, ...]]:
        """Steps on resources the caller picks, by slot: {slot: actions}."""
        out: dict[str, list[str]] = {}
        for step in self.steps:
            if step.on not in SPECIAL_TARGETS:
                out.setdefault(step.on, []).append(step.action)
        return {slot: tuple(actions) for slot, actions in out.items()}

    def on(self, target: str) -> tuple[str, ...]:
        """Actions of the steps on `target`, `group`, `policy` or `role`."""
        return tuple(s.action for s in self.steps if s.on == target)


def _steps(text: str) -> tuple[Step, ...]:
    out = []
    for word in text.split():
        action, _, on = word.partition("@")
        out.append(Step(action, on or "any"))
    return tuple(out)


def _m(id: str, title: str, category: str, edge: str, steps: str, *, aliases: tuple[str, ...] = (),
       services: tuple[str, ...] = (), passed_to: str | None = None, instance_profile: bool = False,
       combines: tuple[str, str] = ("", ""), catalogue: bool = True, creates: str = "") -> Method:
    if edge == "pass" and passed_to is None:
        passed_to = services[0]
    return Method(id, title, category, edge, _steps(steps), services, passed_to, instance_profile, aliases,
                  combines, catalogue, creates)


SELF, ACCESS, NEW, EXISTING = "self-escalation", "principal-access", "new-passrole", "existing-passrole"
LAMBDA, EC2, ECS = "lambda.amazonaws.com", "ec2.amazonaws.com", "ecs-tasks.amazonaws.com"
GLUE, SAGEMAKER, CODEBUILD = "glue.amazonaws.com", "sagemaker.amazonaws.com", "codebuild.amazonaws.com"
CFN, AGENTCORE = "cloudformation.amazonaws.com", "bedrock-agentcore.amazonaws.com"
APPRUNNER_TASKS = "tasks.apprunner.amazonaws.com"
DATAPIPELINE = ("datapipeline.amazonaws.com", "elasticmapreduce.amazonaws.com", EC2)
PASS = "iam:PassRole@role"

METHODS: tuple[Method, ...] = (
    # -- principals: assume, mint credentials, rewrite trust ---------------------------------------------
    _m("sts-001", "assume a role whose trust policy lets the caller in", ACCESS, "assume",
       "sts:AssumeRole@target", aliases=("AssumeRole",)),
    _m("iam-002", "create an access key for another user", ACCESS, "mint", "iam:CreateAccessKey@target",
       aliases=("CreateAccessKey",)),
    _m("iam-003", "delete one of a user's two access keys and create a new one", ACCESS, "mint",
       "iam:CreateAccessKey@target iam:DeleteAccessKey@target", aliases=("CreateAndRotateAccessKey",)),
    _m("iam-004", "give a user without one a console password", ACCESS, "mint", "iam:CreateLoginProfile@target",
       aliases=("CreateLoginProfile",)),
    _m("iam-006", "reset a user's console password", ACCESS, "mint", "iam:UpdateLoginProfile@target",
       aliases=("UpdateLoginProfile",)),
    _m("iam-012", "rewrite a role's trust policy to name the caller, then assume it", ACCESS, "trust",
       "iam:UpdateAssumeRolePolicy@target", aliases=("UpdateAssumeRolePolicy",)),
    # -- writing permissions ------------------------------------------------------------------------------
    _m("iam-001", "write a new default version of a managed policy the principal holds", SELF, "write",
       "iam:CreatePolicyVersion@policy", aliases=("CreateNewPolicyVersion",)),
    _m("iam-005", "write an inline policy on a role", SELF, "write", "iam:PutRolePolicy@target",
       aliases=("PutRolePolicy",)),
    _m("iam-007", "write an inline policy on a user", SELF, "write", "iam:PutUserPolicy@target",
       aliases=("PutUserPolicy",)),
    _m("iam-008", "attach a managed policy (AdministratorAccess) to a user", SELF, "write",
       "iam:AttachUserPolicy@target", aliases=("AttachUserPolicy",)),
    _m("iam-009", "attach a managed policy (AdministratorAccess) to a role", SELF, "write",
       "iam:AttachRolePolicy@target", aliases=("AttachRolePolicy",)),
    _m("iam-010", "attach a managed policy (AdministratorAccess) to a group of the principal", SELF, "write",
       "iam:AttachGroupPolicy@group", aliases=("AttachGroupPolicy",)),
    _m("iam-011", "write an inline policy on a group of the principal", SELF, "write", "iam:PutGroupPolicy@group",
       aliases=("PutGroupPolicy",)),
    _m("SetExistingDefaultPolicyVersion", "make another version of a managed policy the principal holds the "
       "default", SELF, "write", "iam:SetDefaultPolicyVersion@policy", catalogue=False),
    _m("iam-013", "add a user to a more privileged group", SELF, "join", "iam:AddUserToGroup@group",
       aliases=("AddUserToGroup",)),
    # -- a write and an act on the same principal ---------------------------------------------------------
    _m("iam-014", "attach a policy to a role that trusts the caller, then assume it", ACCESS, "combo",
       "iam:AttachRolePolicy@target sts:AssumeRole@target", combines=("iam-009", "sts-001")),
    _m("iam-015", "attach a policy to a user, then create an access key for it", ACCESS, "combo",
       "iam:AttachUserPolicy@target iam:CreateAccessKey@target", combines=("iam-008", "iam-002"),
       aliases=("AttachUserPolicyThenCreateAccessKey",)),
    _m("iam-016", "write a new version of a role's managed policy, then assume the role", ACCESS, "combo",
       "iam:CreatePolicyVersion@policy sts:AssumeRole@target", combines=("iam-001", "sts-001"),
       aliases=("CreatePolicyVersionThenAssumeRole",)),
    _m("iam-017", "write an inline policy on a role that trusts the caller, then assume it", ACCESS, "combo",
       "iam:PutRolePolicy@target sts:AssumeRole@target", combines=("iam-005", "sts-001")),
    _m("iam-018", "write an inline policy on a user, then create an access key for it", ACCESS, "combo",
       "iam:PutUserPolicy@target iam:CreateAccessKey@target", combines=("iam-007", "iam-002"),
       aliases=("PutUserPolicyThenCreateAccessKey",)),
    _m("iam-019", "attach a policy to a role and make its trust policy name the caller", ACCESS, "combo",
       "iam:AttachRolePolicy@target iam:UpdateAssumeRolePolicy@target", combines=("iam-009", "iam-012"),
       aliases=("AttachRolePolicyThenUpdateAssumeRolePolicy",)),
    _m("iam-020", "write a new version of a role's managed policy and make its trust name the caller", ACCESS,
       "combo", "iam:CreatePolicyVersion@policy iam:UpdateAssumeRolePolicy@target", combines=("iam-001", "iam-012"),
       aliases=("CreatePolicyVersionThenUpdateAssumeRolePolicy",)),
    _m("iam-021", "write an inline policy on a role and make its trust name the caller", ACCESS, "combo",
       "iam:PutRolePolicy@target iam:UpdateAssumeRolePolicy@target", combines=("iam-005", "iam-012"),
       aliases=("PutRolePolicyThenUpdateAssumeRolePolicy",)),
    # -- passing a role to a new resource -----------------------------------------------------------------
    _m("apprunner-001", "create an App Runner service with the role as its instance role", NEW, "pass",
       f"{PASS} apprunner:CreateService@service", services=(APPRUNNER_TASKS,), passed_to="apprunner.amazonaws.com",
       aliases=("PassRoleToNewAppRunnerService",)),
    _m("bedrock-001", "create a Bedrock AgentCore code interpreter with the role and run code in it", NEW, "pass",
       f"{PASS} bedrock-agentcore:CreateCodeInterpreter@interpreter "
       "bedrock-agentcore:StartCodeInterpreterSession@interpreter bedrock-agentcore:InvokeCodeInterpreter@interpreter",
       services=(AGENTCORE,), aliases=("PassRoleToNewBedrockCodeInterpreter",)),
    _m("cloudformation-001", "create a stack that runs as the role", NEW, "pass",
       f"{PASS} cloudformation:CreateStack@stack", services=(CFN,), aliases=("PassRoleToCloudFormation",)),
    _m("cloudformation-003", "create a stack set with the role as administration role and deploy it", NEW, "pass",
       f"{PASS} cloudformation:CreateStackSet@stackset cloudformation:CreateStackInstances@stackset",
       services=(CFN,), aliases=("PassRoleToNewStackSet",)),
    _m("cloudformation-004", "give an existing stack set the role as administration role", NEW, "pass",
       f"{PASS} cloudformation:UpdateStackSet@stackset", services=(CFN,), aliases=("PassRoleToUpdatedStackSet",)),
    _m("PassRoleToUpdatedCloudFormationStack", "update a stack to run as the role", NEW, "pass",
       f"{PASS} cloudformation:UpdateStack@stack", services=(CFN,), catalogue=False),
    _m("codebuild-001", "create a CodeBuild project with the role and start a build", NEW, "pass",
       f"{PASS} codebuild:CreateProject@project codebuild:StartBuild@project", services=(CODEBUILD,),
       aliases=("PassRoleToNewCodeBuildProjectThenBuild",)),
    _m("codebuild-004", "create a CodeBuild project with the role and start a batch build", NEW, "pass",
       f"{PASS} codebuild:CreateProject@project codebuild:StartBuildBatch@project", services=(CODEBUILD,),
       aliases=("PassRoleToNewCodeBuildProjectThenBuildBatch",)),
    _m("datapipeline-001", "create and activate a data pipeline that runs as the role", NEW, "pass",
       f"{PASS} datapipeline:CreatePipeline@pipeline datapipeline:PutPipelineDefinition@pipeline "
       "datapipeline:ActivatePipeline@pipeline", services=DATAPIPELINE, passed_to="datapipeline.amazonaws.com",
       aliases=("PassRoleToNewDataPipeline",)),
    _m("ec2-001", "launch an instance with the role's instance profile", NEW, "pass",
       f"{PASS} ec2:RunInstances@instance", services=(EC2,), instance_profile=True, aliases=("PassRoleToNewEC2",)),
    _m("ec2-003", "request a spot instance with the role's instance profile", NEW, "pass",
       f"{PASS} ec2:RequestSpotInstances@instance", services=(EC2,), instance_profile=True,
       aliases=("PassRoleToNewSpotInstance",)),
    _m("PassRoleToExistingEC2", "associate the role's instance profile with an existing instance", EXISTING, "pass",
       f"{PASS} ec2:AssociateIamInstanceProfile@instance", services=(EC2,), instance_profile=True, catalogue=False),
    _m("PassRoleToNewAutoScalingGroup", "launch instances with the role's profile through Auto Scaling", NEW,
       "pass", f"{PASS} autoscaling:CreateLaunchConfiguration@launch autoscaling:CreateAutoScalingGroup@group-asg",
       services=(EC2,), instance_profile=True, catalogue=False),
    _m("ecs-001", "run the role as a task of a service in a new ECS cluster", NEW, "pass",
       f"{PASS} ecs:CreateCluster@cluster ecs:RegisterTaskDefinition@taskdef ecs:CreateService@service",
       services=(ECS,), aliases=("PassRoleToNewECSServiceInNewCluster",)),
    _m("ecs-002", "run the role as a task in a new ECS cluster", NEW, "pass",
       f"{PASS} ecs:CreateCluster@cluster ecs:RegisterTaskDefinition@taskdef ecs:RunTask@taskdef",
       services=(ECS,), aliases=("PassRoleToNewECSTaskInNewCluster",)),
    _m("ecs-003", "run the role as a task of a new service in an existing cluster", NEW, "pass",
       f"{PASS} ecs:RegisterTaskDefinition@taskdef ecs:CreateService@service", services=(ECS,),
       aliases=("PassRoleToNewECSService",)),
    _m("ecs-004", "run the role as a task in an existing cluster (RunTask)", NEW, "pass",
       f"{PASS} ecs:RegisterTaskDefinition@taskdef ecs:RunTask@taskdef", services=(ECS,),
       aliases=("PassRoleToNewECSTaskViaRunTask",)),
    _m("ecs-005", "run the role as a task on a chosen container instance (StartTask)", NEW, "pass",
       f"{PASS} ecs:RegisterTaskDefinition@taskdef ecs:StartTask@taskdef", services=(ECS,),
       aliases=("PassRoleToNewECSTaskViaStartTask",)),
    _m("glue-001", "create a Glue development endpoint with the role and log in to it", NEW, "pass",
       f"{PASS} glue:CreateDevEndpoint@endpoint", services=(GLUE,), aliases=("PassRoleToNewGlueDevEndpoint",)),
    _m("glue-003", "create a Glue job with the role and run it", NEW, "pass",
       f"{PASS} glue:CreateJob@job glue:StartJobRun@job", services=(GLUE,), aliases=("PassRoleToNewGlueJobThenRun",)),
    _m("glue-004", "create a Glue job with the role and a trigger that runs it", NEW, "pass",
       f"{PASS} glue:CreateJob@job glue:CreateTrigger@trigger", services=(GLUE,),
       aliases=("PassRoleToNewGlueJobViaTrigger",)),
    _m("glue-005", "give an existing Glue job the role and run it", NEW, "pass",
       f"{PASS} glue:UpdateJob@job glue:StartJobRun@job", services=(GLUE,),
       aliases=("PassRoleToUpdatedGlueJobThenRun",)),
    _m("glue-006", "give an existing Glue job the role and a trigger that runs it", NEW, "pass",
       f"{PASS} glue:UpdateJob@job glue:CreateTrigger@trigger", services=(GLUE,),
       aliases=("PassRoleToUpdatedGlueJobViaTrigger",)),
    _m("lambda-001", "create a function with the role and invoke it", NEW, "pass",
       f"{PASS} lambda:CreateFunction@function lambda:InvokeFunction@function", services=(LAMBDA,),
       aliases=("PassRoleToNewLambdaThenInvoke",)),
    _m("lambda-002", "create a function with the role and an event source that triggers it", NEW, "pass",
       f"{PASS} lambda:CreateFunction@function lambda:CreateEventSourceMapping@mapping", services=(LAMBDA,),
       aliases=("PassRoleToNewLambdaWithExistingTrigger", "PassRoleToNewLambdaWithNewDynamoTrigger")),
    _m("lambda-006", "create a function with the role and let the caller invoke it", NEW, "pass",
       f"{PASS} lambda:CreateFunction@function lambda:AddPermission@function", services=(LAMBDA,),
       aliases=("PassRoleToNewLambdaThenAddPermission",)),
    _m("sagemaker-001", "create a SageMaker notebook instance with the role", NEW, "pass",
       f"{PASS} sagemaker:CreateNotebookInstance@notebook", services=(SAGEMAKER,),
       aliases=("PassRoleToNewSageMakerNotebook",)),
    _m("sagemaker-002", "create a SageMaker training job that runs as the role", NEW, "pass",
       f"{PASS} sagemaker:CreateTrainingJob@job", services=(SAGEMAKER,), aliases=("PassRoleToNewSageMakerTrainingJob",)),
    _m("sagemaker-003", "create a SageMaker processing job that runs as the role", NEW, "pass",
       f"{PASS} sagemaker:CreateProcessingJob@job", services=(SAGEMAKER,),
       aliases=("PassRoleToNewSageMakerProcessingJob",)),
    # -- taking over an existing resource that runs with a role ------------------------------------------
    _m("apprunner-002", "change an App Runner service's image or start command", EXISTING, "existing",
       "apprunner:UpdateService@service", services=(APPRUNNER_TASKS,), creates="apprunner:CreateService"),
    _m("bedrock-002", "run code in an existing Bedrock AgentCore code interpreter", EXISTING, "existing",
       "bedrock-agentcore:StartCodeInterpreterSession@interpreter bedrock-agentcore:InvokeCodeInterpreter@interpreter",
       services=(AGENTCORE,), aliases=("BedrockExistingCodeInterpreterSession",),
       creates="bedrock-agentcore:CreateCodeInterpreter"),
    _m("cloudformation-002", "update a stack that runs with a service role", EXISTING, "existing",
       "cloudformation:UpdateStack@stack", services=(CFN,), creates="cloudformation:CreateStack"),
    _m("cloudformation-005", "change an existing stack through a change set", NEW, "existing",
       "cloudformation:CreateChangeSet@stack cloudformation:ExecuteChangeSet@stack", services=(CFN,),
       aliases=("ExecuteCloudFormationChangeSet",), creates="cloudformation:CreateStack"),
    _m("codebuild-002", "start a build of an existing project with a buildspec override", EXISTING, "existing",
       "codebuild:StartBuild@project", services=(CODEBUILD,), creates="codebuild:CreateProject"),
    _m("codebuild-003", "start a batch build of an existing project with a buildspec override", EXISTING,
       "existing", "codebuild:StartBuildBatch@project", services=(CODEBUILD,), creates="codebuild:CreateProject"),
    _m("CodeBuildUpdateProjectThenBuild", "change an existing CodeBuild project's commands and build", EXISTING,
       "existing", "codebuild:UpdateProject@project codebuild:StartBuild@project", services=(CODEBUILD,),
       catalogue=False, creates="codebuild:CreateProject"),
    _m("ec2-002", "change an instance's user data and restart it", EXISTING, "existing",
       "ec2:ModifyInstanceAttribute@instance ec2:StopInstances@instance ec2:StartInstances@instance",
       services=(EC2,), instance_profile=True, aliases=("ModifyInstanceUserDataThenRestart",)),
    _m("ec2-004", "publish a new default version of a launch template that names a profile", EXISTING, "existing",
       "ec2:CreateLaunchTemplateVersion@template ec2:ModifyLaunchTemplate@template", services=(EC2,),
       instance_profile=True, aliases=("ModifyLaunchTemplate",)),
    _m("ec2instanceconnect-003", "push an SSH key to an instance and use its role", EXISTING, "existing",
       "ec2-instance-connect:SendSSHPublicKey@instance ec2:DescribeInstances@describe", services=(EC2,),
       instance_profile=True, aliases=("EC2InstanceConnectPushKey",)),
    _m("ECSExecuteCommand", "open a shell in a running ECS task and use its role", EXISTING, "existing",
       "ecs:ExecuteCommand@task ecs:DescribeTasks@task", services=(ECS,), catalogue=False),
    _m("glue-002", "add an SSH key to an existing Glue development endpoint", EXISTING, "existing",
       "glue:UpdateDevEndpoint@endpoint", services=(GLUE,), aliases=("UpdateExistingGlueDevEndpoint",),
       creates="glue:CreateDevEndpoint"),
    _m("lambda-003", "replace the code of a function that runs with a role", EXISTING, "existing",
       "lambda:UpdateFunctionCode@function", services=(LAMBDA,), aliases=("UpdateExistingLambdaCode",),
       creates="lambda:CreateFunction"),
    _m("lambda-004", "replace a function's code and invoke it", EXISTING, "existing",
       "lambda:UpdateFunctionCode@function lambda:InvokeFunction@function", services=(LAMBDA,),
       aliases=("UpdateAndInvokeLambda",), creates="lambda:CreateFunction"),
    _m("lambda-005", "replace a function's code and let the caller invoke it", EXISTING, "existing",
       "lambda:UpdateFunctionCode@function lambda:AddPermission@function", services=(LAMBDA,),
       aliases=("UpdateLambdaAndAddPermission",), creates="lambda:CreateFunction"),
    _m("sagemaker-004", "open an existing notebook instance in the browser", EXISTING, "existing",
       "sagemaker:CreatePresignedNotebookInstanceUrl@notebook", services=(SAGEMAKER,),
       aliases=("SageMakerPresignedNotebookUrl",), creates="sagemaker:CreateNotebookInstance"),
    _m("sagemaker-005", "change a notebook's lifecycle script and restart it", EXISTING, "existing",
       "sagemaker:CreateNotebookInstanceLifecycleConfig@config sagemaker:StopNotebookInstance@notebook "
       "sagemaker:UpdateNotebookInstance@notebook sagemaker:StartNotebookInstance@notebook", services=(SAGEMAKER,),
       aliases=("SageMakerNotebookLifecycleConfig",), creates="sagemaker:CreateNotebookInstance"),
    _m("ssm-001", "open a Session Manager shell on an instance and use its role", EXISTING, "existing",
       "ssm:StartSession@instance", services=(EC2,), instance_profile=True),
    _m("ssm-002", "run commands on an instance and use its role", EXISTING, "existing", "ssm:SendCommand@instance",
       services=(EC2,), instance_profile=True, aliases=("SSMSendCommand",)),
)

BY_ID: dict[str, Method] = {m.id: m for m in METHODS}
ALIASES: dict[str, str] = {alias: m.id for m in METHODS for alias in m.aliases}
COMBOS: dict[tuple[str, str], str] = {m.combines: m.id for m in METHODS if m.edge == "combo"}
# Every action some method needs: a principal allowed none of them has no edge to look for.
ACTIONS: tuple[str, ...] = tuple(sorted({a.lower() for m in METHODS for a in m.actions}))


def method(id_or_alias: str) -> Method:
    """A method by its id or one of its aliases."""
    return BY_ID[ALIASES.get(id_or_alias, id_or_alias)]


def by_edge(edge: str) -> tuple[Method, ...]:
    return tuple(m for m in METHODS if m.edge == edge)


@dataclass(frozen=True)
class Granted:
    """A method whose every action a permission set allows (on any resource, or on the holder's own)."""
    method: Method
    grants: tuple[Grant, ...]

    @property
    def conditional(self) -> bool:
        return any(g.conditional for g in self.grants)


def granted_methods(permissions: PermissionSet) -> list[Granted]:
    """The methods a policy grants by its actions alone, without a graph: what an IAM write hands out
    (detect/detectors/iam_permission_change.py judges written policies with it). Writes and credentials
    count on the holder's own resources too (a policy letting a role rewrite itself); `iam:PassRole` and
    the other steps count on any resource."""
    found = []
    for m in METHODS:
        on_self = m.edge in ("write", "mint", "join", "combo")
        grants = []
        for action in m.actions:
            grant = permissions.grant(action, on_self=on_self)
            if grant is None:
                break
            grants.append(grant)
        else:
            found.append(Granted(m, tuple(grants)))
    return found
