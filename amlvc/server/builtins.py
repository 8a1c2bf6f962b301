"""Built-in content of every local workspace: the Microsoft modules and a few sample datasets.

Module families and names come from `amlvc.rules.MODULE_FAMILIES` (reference Appendix A); the
batch of each is the one seen in real payloads or the project's fixtures where known, else 1700.
Ports are listed for the modules of the reference's examples (MODREF/DSGN); other modules get an
empty interface. Sample datasets are owned by the global workspace (reference §5.1) and invented.
"""

from __future__ import annotations

from typing import Any

from amlvc import rules
from amlvc.server.wire import GLOBAL_WORKSPACE_ID, date, resource_id, ticks

DEFAULT_BATCH = 1700
BUILTIN_CREATED_MS = 1451606400000  # 2016-01-01, a fixed date so lists are stable across restarts

BATCHES: dict[str, int] = {
    "4e1b0fe6aded4b3fa36f39b8862b9004": 1729,  # Import Data (OBS)
    "90381e8067c34d9987541db785b7ea37": 1744,  # Apply SQL Transformation (PYX)
    "b0fd7660eeed43c5948720d9cc79ed5d": 1724,
    "70530644c97a4ab685f788bf30a8be5f": 1718,
    "5cc7053eaa30450d96c0dae4be720977": 1562,  # Train Model (OBS)
    "401b4f92e7244d5abe81d5b0ff9bdb33": 1730,  # Score Model (OBS)
    "927d65ac3b504694990320f6c1672089": 1722,
    "30806023392b42e094d66b775a6e0fd5": 1583,  # Execute R Script (OBS)
    "cdb56f957f4c404dbde75bb972e6f232": 1735,
    "314e34a8b24c4870afe62649b6fc7476": 1607,  # Create R Model (OBS)
    "faa6ba63383c4086ba587abf26b85814": 1643,  # Convert to CSV
    "72bf58e0fc874bb19704f1805003b975": 1642,  # Convert to Dataset
    "1cdbcda42ece49088b87e6b636258d3d": 1644,  # Convert to TSV
    "805e592d0f1f48eb97c9688ed0c1dc70": 1740,
    "1ec722fab6234e26a44ea50c6d726223": 1730,  # Select Columns in Dataset (OBS)
}

# family -> (input ports, output ports), names as in MODREF/DSGN
PORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "70530644c97a4ab685f788bf30a8be5f": (("Dataset",), ("Results dataset1", "Results dataset2")),
    "b0fd7660eeed43c5948720d9cc79ed5d": ((), ("Untrained model",)),
    "5cc7053eaa30450d96c0dae4be720977": (("Untrained model", "Dataset"), ("Trained model",)),
    "401b4f92e7244d5abe81d5b0ff9bdb33": (("Trained model", "Dataset"), ("Scored dataset",)),
    "927d65ac3b504694990320f6c1672089": (("Scored dataset", "Scored dataset to compare"), ("Evaluation results",)),
    "4e1b0fe6aded4b3fa36f39b8862b9004": ((), ("Results dataset",)),
    "faa6ba63383c4086ba587abf26b85814": (("Dataset",), ("Results dataset",)),
    "1ec722fab6234e26a44ea50c6d726223": (("Dataset",), ("Results dataset",)),
}

SAMPLE_DATASETS: tuple[tuple[str, str, str, bytes], ...] = (
    ("a1c3e5b7d9f14a3c5e7b9d1f3a5c7e90", "Adult Census Income Binary Classification dataset", "GenericCSV",
     b"age,workclass,education,income\r\n39,State-gov,Bachelors,<=50K\r\n50,Self-emp,Bachelors,<=50K\r\n"
     b"38,Private,HS-grad,>50K\r\n"),
    ("b2d4f6a8c0e24b4d6f8a0c2e4b6d8f01", "Iris Two Class Data", "GenericCSV",
     b"Class,sepal-length,sepal-width,petal-length,petal-width\r\n0,5.1,3.5,1.4,0.2\r\n1,7.0,3.2,4.7,1.4\r\n"),
)


def _port(name: str, markup: str) -> dict[str, Any]:
    return {"Name": name, "FriendlyName": name, "IsOptional": False, "MarkupType": markup,
            "Types" if markup == "InputPort" else "Type": [] if markup == "InputPort" else None}


def module_item(family: str, batch: int, name: str | None, owner: str = GLOBAL_WORKSPACE_ID) -> dict[str, Any]:
    """A GET-modules item (reference §5.3 field order)."""
    inputs, outputs = PORTS.get(family, ((), ()))
    builtin = owner == GLOBAL_WORKSPACE_ID
    return {
        "Id": resource_id(owner, family, batch), "Name": name or f"Module {family[:8]}", "Description": "",
        "Category": "Built-in" if builtin else "Custom", "FamilyId": family, "IsDeterministic": True,
        "IsBlocking": True, "ModuleType": "Module", "ReleaseState": "Release" if builtin else "Custom",
        "ModuleLanguage": {"Language": "DotNet", "Version": "4.5.0"}, "ResourceUploadId": None, "Size": 0,
        "CreatedDate": date(BUILTIN_CREATED_MS),
        "Owner": "Microsoft Corporation" if builtin else "local-user@amlvc", "IsDeprecated": False,
        "SourceOrigin": "FromResourceUpload", "ClientVersion": None, "ServiceVersion": 0, "Batch": batch,
        "EscalationEmail": None, "InformationUrl": None, "CloudSystem": None, "InterfaceString": None,
        "ModuleInterface": {"InputPorts": [_port(p, "InputPort") for p in inputs],
                            "OutputPorts": [_port(p, "OutputPort") for p in outputs], "Parameters": []},
        "ScriptsDefaultContents": [],
    }


def builtin_modules() -> list[dict[str, Any]]:
    return [module_item(family, BATCHES.get(family, DEFAULT_BATCH), name)
            for family, name in rules.MODULE_FAMILIES.items()]


def dataset_item(asset_id: str, name: str, data_type: str, size: int, owner: str, created_ms: int,
                 service_version: int = 0) -> dict[str, Any]:
    """A stored GET-datasources item (endpoints are added when rendered)."""
    _, family, instance = asset_id.split(".")
    return {
        "SchemaStatus": "Complete", "Id": asset_id, "DataTypeId": data_type, "Name": name, "Description": "",
        "FamilyId": family, "ResourceUploadId": None, "SourceOrigin": "FromResourceUpload", "Size": size,
        "CreatedDate": date(created_ms), "Owner": owner, "ExperimentId": None, "ClientVersion": None,
        "PromotedFrom": None, "UploadedFromFilename": None, "ServiceVersion": service_version, "Category": None,
        "IsDeprecated": False, "Culture": "default", "Batch": int(instance.rsplit("-", 1)[1]),
        "CreatedDateTicks": ticks(created_ms),
    }


def model_item(kind: str, asset_id: str, name: str, owner: str, created_ms: int) -> dict[str, Any]:
    """A stored trained-model or transform item (reference §5.2 shape)."""
    _, family, instance = asset_id.split(".")
    return {
        "Language": {"Language": "DotNet", "Version": "4.5.0"}, "Id": asset_id,
        "DataTypeId": "ILearnerDotNet" if kind == "trainedmodels" else "ITransformDotNet", "Name": name,
        "Description": "", "FamilyId": family, "ResourceUploadId": None, "SourceOrigin": "FromOutputPromotion",
        "Size": 0, "CreatedDate": date(created_ms), "Owner": owner, "ExperimentId": None, "ClientVersion": None,
        "PromotedFrom": None, "UploadedFromFilename": None, "ServiceVersion": 0, "Category": None,
        "DownloadLocation": None, "IsDeprecated": False, "Culture": "default",
        "Batch": int(instance.rsplit("-", 1)[1]), "CreatedDateTicks": ticks(created_ms),
    }
