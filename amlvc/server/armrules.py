"""What an ARM web-service PUT or PATCH must satisfy (WS §2.7, §5.4), as data, and the ARM error it is refused with.

Refusals use the observed shape: 400 `BadRequest` "The request is invalid." with the specific code
in `details` (ISS-3465); nothing is stored when one is raised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from amlvc.server.errors import ApiFault

DIAGNOSTICS_LEVELS = ("None", "Error", "All")
MIN_CALLS, MAX_CALLS = 4, 200  # realtimeConfiguration.maxConcurrentCalls (SPEC17)

# What a create (PUT of a new service) must carry besides packageType and location: (member, inner member,
# detail code, what to add). The schema marks none of them required, but the service refused a create without
# them, and the azuremlps README has users add both to an exported definition (WS §2.10); an update keeps the
# stored values. The detail codes are ours (no refusal was recorded).
REQUIRED_ON_CREATE = (
    ("commitmentPlan", "id", "CommitmentPlanRequired",
     "properties.commitmentPlan.id, the ARM id of a Microsoft.MachineLearning/commitmentPlans resource"),
    ("storageAccount", "name", "StorageAccountRequired", "properties.storageAccount.name"),
    ("storageAccount", "key", "StorageAccountKeyRequired", "properties.storageAccount.key"),
)
COMMITMENT_PLAN_RE = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearning/"
                                r"commitmentPlans/[^/]+$", re.IGNORECASE)


class ArmFault(ApiFault):
    """An ARM error body with `details` (e.g. `WebServiceNotFound`, `CannotChangeStorageAccount`)."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(status, code, message, "arm")
        self.details = details or []

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def invalid(code: str, message: str) -> ArmFault:
    """The observed 400 shape: generic BadRequest with the specific code in `details` (ISS-3465)."""
    return ArmFault(400, "BadRequest", "The request is invalid.", [{"code": code, "message": message}])


def validate(props: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    if props.get("packageType") != "Graph":
        raise ArmFault(400, "InvalidRequestContent",
                       "properties.packageType is required and must be 'Graph' ('Code' is not supported).")
    calls = (props.get("realtimeConfiguration") or {}).get("maxConcurrentCalls")
    if calls is not None and not MIN_CALLS <= calls <= MAX_CALLS:
        raise invalid("InvalidMaxConcurrentCalls",
                      f"realtimeConfiguration.maxConcurrentCalls must be between {MIN_CALLS} and {MAX_CALLS}; "
                      f"got {calls}.")
    level = (props.get("diagnostics") or {}).get("level")
    if "diagnostics" in props and level not in DIAGNOSTICS_LEVELS:
        raise invalid("InvalidDiagnosticsLevel", f"diagnostics.level must be one of {', '.join(DIAGNOSTICS_LEVELS)}.")
    if old is None:
        return
    old_props = old["properties"]
    if old_props.get("readOnly"):
        raise invalid("WebServiceIsReadOnly", f"Web Service '{old['name']}' is read-only; it can only be deleted.")
    old_account = (old_props.get("storageAccount") or {}).get("name")
    new_account = (props.get("storageAccount") or {}).get("name")
    if old_account and new_account and new_account.lower() != old_account.lower():
        raise invalid("CannotChangeStorageAccount", "The StorageAccount cannot be changed. Currently configured "
                                                    f"storage account name = '{old_account}' .")
    old_plan = (old_props.get("commitmentPlan") or {}).get("id")
    new_plan = (props.get("commitmentPlan") or {}).get("id")
    if old_plan and new_plan and new_plan.lower() != old_plan.lower():
        raise invalid("CannotChangeCommitmentPlan", "The CommitmentPlan cannot be changed. Currently configured "
                                                    f"commitment plan = '{old_plan}' .")


def validate_create(props: Mapping[str, Any]) -> None:
    """A new service names its commitment plan and storage account (REQUIRED_ON_CREATE)."""
    for member, inner, code, what in REQUIRED_ON_CREATE:
        if not (props.get(member) or {}).get(inner):
            raise invalid(code, f"A new web service needs {what}; add it to the definition and PUT again.")
    plan = props["commitmentPlan"]["id"]
    if not COMMITMENT_PLAN_RE.match(plan):
        raise invalid("InvalidCommitmentPlanId", f"properties.commitmentPlan.id '{plan}' is not the ARM id of a "
                                                 "commitment plan (/subscriptions/…/resourceGroups/…/providers/"
                                                 "Microsoft.MachineLearning/commitmentPlans/NAME).")
