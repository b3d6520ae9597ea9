"""Privilege-escalation methods: sets of actions that, granted together, let an identity gain
permissions it was not given. The list gathers the publicly documented methods (Rhino Security
Labs' 21, the pathfinding.cloud catalogue, PMapper's edges).

A method is present when every action is granted on an arbitrary resource, or, for the methods
that work on the identity itself (changing its own policies or keys), on its own ARN, its own
groups or its own managed policies.
"""

from __future__ import annotations

from dataclasses import dataclass

from nhiwatch.inventory.policy import Grant, PermissionSet


@dataclass(frozen=True)
class Method:
    id: str
    title: str
    actions: tuple[str, ...]
    on_self: bool = False  # also counts when the grant only reaches the identity's own resources


def _m(id: str, title: str, *actions: str, on_self: bool = False) -> Method:
    return Method(id, title, tuple(actions), on_self)


PASS = "iam:PassRole"

METHODS: tuple[Method, ...] = (
    # Direct changes to IAM principals, policies and credentials.
    _m("CreateAccessKey", "create an access key for another user", "iam:CreateAccessKey", on_self=True),
    _m("CreateAndRotateAccessKey", "delete and re-create another user's access key", "iam:CreateAccessKey",
       "iam:DeleteAccessKey"),
    _m("CreateLoginProfile", "give a user a console password", "iam:CreateLoginProfile", on_self=True),
    _m("UpdateLoginProfile", "reset a user's console password", "iam:UpdateLoginProfile", on_self=True),
    _m("AddUserToGroup", "add a user to a more privileged group", "iam:AddUserToGroup", on_self=True),
    _m("CreateNewPolicyVersion", "write a new default version of a managed policy", "iam:CreatePolicyVersion",
       on_self=True),
    _m("SetExistingDefaultPolicyVersion", "switch a managed policy to an older, broader version",
       "iam:SetDefaultPolicyVersion", on_self=True),
    _m("AttachUserPolicy", "attach any managed policy to a user", "iam:AttachUserPolicy", on_self=True),
    _m("AttachGroupPolicy", "attach any managed policy to a group", "iam:AttachGroupPolicy", on_self=True),
    _m("AttachRolePolicy", "attach any managed policy to a role", "iam:AttachRolePolicy", on_self=True),
    _m("PutUserPolicy", "write an inline policy on a user", "iam:PutUserPolicy", on_self=True),
    _m("PutGroupPolicy", "write an inline policy on a group", "iam:PutGroupPolicy", on_self=True),
    _m("PutRolePolicy", "write an inline policy on a role", "iam:PutRolePolicy", on_self=True),
    _m("UpdateAssumeRolePolicy", "rewrite a role's trust policy to assume it", "iam:UpdateAssumeRolePolicy"),
    _m("AttachUserPolicyThenCreateAccessKey", "attach a policy to a user and mint its key",
       "iam:AttachUserPolicy", "iam:CreateAccessKey"),
    _m("PutUserPolicyThenCreateAccessKey", "put a policy on a user and mint its key", "iam:PutUserPolicy",
       "iam:CreateAccessKey"),
    _m("CreatePolicyVersionThenAssumeRole", "rewrite a role's policy then assume it", "iam:CreatePolicyVersion",
       "sts:AssumeRole"),
    _m("AttachRolePolicyThenUpdateAssumeRolePolicy", "attach a policy to a role and trust oneself",
       "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy"),
    _m("CreatePolicyVersionThenUpdateAssumeRolePolicy", "rewrite a role's policy and trust oneself",
       "iam:CreatePolicyVersion", "iam:UpdateAssumeRolePolicy"),
    _m("PutRolePolicyThenUpdateAssumeRolePolicy", "put a policy on a role and trust oneself",
       "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy"),
    # Passing an existing role to a new compute resource, then using that resource's credentials.
    _m("PassRoleToNewEC2", "launch an instance with a privileged instance profile", PASS, "ec2:RunInstances"),
    _m("PassRoleToNewSpotInstance", "request a spot instance with a privileged profile", PASS,
       "ec2:RequestSpotInstances"),
    _m("PassRoleToExistingEC2", "associate a privileged instance profile with an instance", PASS,
       "ec2:AssociateIamInstanceProfile"),
    _m("PassRoleToNewLambdaThenInvoke", "create a function with a privileged role and invoke it", PASS,
       "lambda:CreateFunction", "lambda:InvokeFunction"),
    _m("PassRoleToNewLambdaThenAddPermission", "create a function with a privileged role and open it", PASS,
       "lambda:CreateFunction", "lambda:AddPermission"),
    _m("PassRoleToNewLambdaWithExistingTrigger", "create a function with a privileged role on an event source",
       PASS, "lambda:CreateFunction", "lambda:CreateEventSourceMapping"),
    _m("PassRoleToNewLambdaWithNewDynamoTrigger", "create a function and a DynamoDB stream to trigger it", PASS,
       "lambda:CreateFunction", "lambda:CreateEventSourceMapping", "dynamodb:CreateTable", "dynamodb:PutItem"),
    _m("PassRoleToNewGlueDevEndpoint", "create a Glue dev endpoint with a privileged role", PASS,
       "glue:CreateDevEndpoint"),
    _m("PassRoleToNewGlueJobThenRun", "create a Glue job with a privileged role and run it", PASS,
       "glue:CreateJob", "glue:StartJobRun"),
    _m("PassRoleToNewGlueJobViaTrigger", "create a Glue job with a privileged role and a trigger", PASS,
       "glue:CreateJob", "glue:CreateTrigger"),
    _m("PassRoleToUpdatedGlueJobThenRun", "give a Glue job a privileged role and run it", PASS, "glue:UpdateJob",
       "glue:StartJobRun"),
    _m("PassRoleToUpdatedGlueJobViaTrigger", "give a Glue job a privileged role and trigger it", PASS,
       "glue:UpdateJob", "glue:CreateTrigger"),
    _m("PassRoleToCloudFormation", "create a stack that runs as a privileged role", PASS,
       "cloudformation:CreateStack"),
    _m("PassRoleToUpdatedCloudFormationStack", "update a stack to run as a privileged role", PASS,
       "cloudformation:UpdateStack"),
    _m("PassRoleToNewStackSet", "create a stack set with a privileged execution role", PASS,
       "cloudformation:CreateStackSet", "cloudformation:CreateStackInstances"),
    _m("PassRoleToUpdatedStackSet", "update a stack set with a privileged execution role", PASS,
       "cloudformation:UpdateStackSet"),
    _m("PassRoleToNewDataPipeline", "create a data pipeline with a privileged role", PASS,
       "datapipeline:CreatePipeline"),
    _m("PassRoleToNewCodeBuildProjectThenBuild", "create a CodeBuild project with a privileged role and build",
       PASS, "codebuild:CreateProject", "codebuild:StartBuild"),
    _m("PassRoleToNewCodeBuildProjectThenBuildBatch", "create a CodeBuild project and start a batch build", PASS,
       "codebuild:CreateProject", "codebuild:StartBuildBatch"),
    _m("PassRoleToNewECSServiceInNewCluster", "run a privileged task definition as a service", PASS,
       "ecs:CreateCluster", "ecs:RegisterTaskDefinition", "ecs:CreateService"),
    _m("PassRoleToNewECSTaskInNewCluster", "run a privileged task definition in a new cluster", PASS,
       "ecs:CreateCluster", "ecs:RegisterTaskDefinition", "ecs:RunTask"),
    _m("PassRoleToNewECSService", "register a privileged task definition and run it as a service", PASS,
       "ecs:RegisterTaskDefinition", "ecs:CreateService"),
    _m("PassRoleToNewECSTaskViaRunTask", "register a privileged task definition and run it", PASS,
       "ecs:RegisterTaskDefinition", "ecs:RunTask"),
    _m("PassRoleToNewECSTaskViaStartTask", "register a privileged task definition and start it", PASS,
       "ecs:RegisterTaskDefinition", "ecs:StartTask"),
    _m("PassRoleToNewSageMakerNotebook", "create a notebook instance with a privileged role", PASS,
       "sagemaker:CreateNotebookInstance"),
    _m("PassRoleToNewSageMakerTrainingJob", "create a training job with a privileged role", PASS,
       "sagemaker:CreateTrainingJob"),
    _m("PassRoleToNewSageMakerProcessingJob", "create a processing job with a privileged role", PASS,
       "sagemaker:CreateProcessingJob"),
    _m("PassRoleToNewAppRunnerService", "create an App Runner service with a privileged role", PASS,
       "apprunner:CreateService"),
    _m("PassRoleToNewBedrockCodeInterpreter", "create a Bedrock AgentCore code interpreter with a role", PASS,
       "bedrock-agentcore:CreateCodeInterpreter", "bedrock-agentcore:StartCodeInterpreterSession",
       "bedrock-agentcore:InvokeCodeInterpreter"),
    _m("PassRoleToNewAutoScalingGroup", "launch instances with a privileged profile through auto scaling", PASS,
       "autoscaling:CreateLaunchConfiguration", "autoscaling:CreateAutoScalingGroup"),
    # Taking over an existing resource that already runs with a role.
    _m("UpdateExistingGlueDevEndpoint", "add an SSH key to a Glue dev endpoint", "glue:UpdateDevEndpoint"),
    _m("UpdateExistingLambdaCode", "replace the code of a function that has a role",
       "lambda:UpdateFunctionCode"),
    _m("UpdateAndInvokeLambda", "replace a function's code and invoke it", "lambda:UpdateFunctionCode",
       "lambda:InvokeFunction"),
    _m("UpdateLambdaAndAddPermission", "replace a function's code and open it", "lambda:UpdateFunctionCode",
       "lambda:AddPermission"),
    _m("ExecuteCloudFormationChangeSet", "change an existing stack through a change set",
       "cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet"),
    _m("ModifyInstanceUserDataThenRestart", "change an instance's user data and restart it",
       "ec2:ModifyInstanceAttribute", "ec2:StopInstances", "ec2:StartInstances"),
    _m("ModifyLaunchTemplate", "publish a new default launch template version",
       "ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate"),
    _m("EC2InstanceConnectPushKey", "push an SSH key to an instance and use its role",
       "ec2-instance-connect:SendSSHPublicKey", "ec2:DescribeInstances"),
    _m("SSMSendCommand", "run commands on instances and use their roles", "ssm:SendCommand"),
    _m("ECSExecuteCommand", "open a shell in a running task and use its role", "ecs:ExecuteCommand",
       "ecs:DescribeTasks"),
    _m("CodeBuildUpdateProjectThenBuild", "change an existing CodeBuild project's commands and build",
       "codebuild:UpdateProject", "codebuild:StartBuild"),
    _m("SageMakerPresignedNotebookUrl", "open an existing notebook instance and use its role",
       "sagemaker:CreatePresignedNotebookInstanceUrl"),
    _m("SageMakerNotebookLifecycleConfig", "change a notebook's lifecycle script and restart it",
       "sagemaker:CreateNotebookInstanceLifecycleConfig", "sagemaker:StopNotebookInstance",
       "sagemaker:UpdateNotebookInstance", "sagemaker:StartNotebookInstance"),
    _m("BedrockExistingCodeInterpreterSession", "use an existing code interpreter's role",
       "bedrock-agentcore:StartCodeInterpreterSession", "bedrock-agentcore:InvokeCodeInterpreter"),
)


@dataclass(frozen=True)
class Escalation:
    method: Method
    grants: tuple[Grant, ...]

    @property
    def conditional(self) -> bool:
        return any(g.conditional for g in self.grants)


def escalations(permissions: PermissionSet) -> list[Escalation]:
    """Every method whose actions are all granted; a method implied by a larger one found too
    is still listed, because each is a separate path to close."""
    found = []
    for method in METHODS:
        grants = []
        for action in method.actions:
            grant = permissions.grant(action, on_self=method.on_self)
            if grant is None:
                break
            grants.append(grant)
        else:
            found.append(Escalation(method, tuple(grants)))
    return found
