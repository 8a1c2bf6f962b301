"""Declarative tables of the canonical form: volatile, identity, layout, redundant, script and secret fields, limits."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

# --- limits (hostile input) -------------------------------------------------------------------------------------

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # a real export with run statuses is ~100 kB per 15 modules
MAX_LAYOUT_XML = 8 * 1024 * 1024  # 20,000 NodePosition elements are ~2 MB
MAX_STRING_LENGTH = 8 * 1024 * 1024  # longest string allowed in a document (scripts included), in characters
MAX_DEPTH = 64  # nesting of JSON containers; the service's own documents nest about 8 deep

# --- format markers -----------------------------------------------------------------------------------------------

EXPERIMENT_FORMAT = "amlvc/experiment@1"
LAYOUT_FORMAT = "amlvc/layout@1"
WEBSERVICE_FORMAT = "amlvc/webservice@1"

# --- the user's repository (SPEC section 1): every name of its layout ---------------------------------------------

CONFIG_FILE = "amlvc.toml"
LOCK_FILE = "amlvc.lock"
STATE_DIR = ".amlvc"  # local state, ignored by git
SECRETS_FILE = f"{STATE_DIR}/secrets.json"
JOURNAL_FILE = f"{STATE_DIR}/pull-journal.json"
EXPERIMENTS_DIR = "experiments"  # experiments/<slug>/<file>
EXPERIMENT_FILE = "experiment.json"
LAYOUT_FILE = "layout.json"
WEBSERVICE_FILE = "webservice.json"
SCRIPTS_DIR = "scripts"
CANONICAL_FILES = (EXPERIMENT_FILE, LAYOUT_FILE, WEBSERVICE_FILE)  # plus everything under scripts/
BACKUP_REF_PREFIX = "refs/amlvc/backup"  # refs/amlvc/backup/<remote>/<slug>/<UTC time>
IMPORT_REMOTE = "import"  # pseudo-remote under which `amlvc import` records identity in the lock
# Names Windows reserves for devices, whatever the extension ("con", "nul.json"): a checkout there fails on them.
WINDOWS_RESERVED = frozenset({"con", "prn", "aux", "nul", "conin$", "conout$",
                              *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))})
# merge.py's marker for a value both sides changed; a file holding it anywhere is not canonical.
CONFLICT_KEY = "$conflict"
CONFLICT_MARKER = '"$conflict"'

# --- key order of the service (Json.NET class order, reference section 3) ----------------------------------------

TOP_LEVEL_ORDER = (
    "ExperimentId", "RunId", "ParentExperimentId", "OriginalExperimentDocumentationLink", "Summary", "Description",
    "Graph", "Status", "Etag", "NodeStatuses", "Creator", "IsLeaf", "DisableNodesUpdate", "WebService", "Category",
    "Tags", "IsPartialRun",
)
GRAPH_ORDER = ("ModuleNodes", "SerializedClientData", "PublishInfo", "Parameters", "EdgesInternal")
NODE_ORDER = (
    "Id", "ModuleId", "Comment", "CommentCollapsed", "Language", "Version", "UsePreviousResults", "ModuleParameters",
    "IsPartOfPartialRun", "InputPortsInternal", "OutputPortsInternal",
)
PARAMETER_ORDER = ("ValueType", "LinkedGlobalParameter", "Name", "Value")
INPUT_PORT_ORDER = (
    "Name", "DataSourceId", "TrainedModelId", "TransformModuleId", "Language", "Version", "PortIndex", "NodeId",
)
OUTPUT_PORT_ORDER = ("Name", "NodeId", "OutputType")
EDGE_ORDER = ("SourceOutputPortId", "DestinationInputPortId", "DestinationInputPortIndex")
WEBSERVICE_ORDER = (
    "IsWebServiceExperiment", "Inputs", "Outputs", "Parameters", "WebServiceGroupId", "ModelPackageId", "RunId",
    "SerializedClientData", "ArmWebServiceId",
)
WEBSERVICE_PORT_ORDER = ("Id", "PortId", "Name")
WEBSERVICE_PARAMETER_ORDER = ("Name", "Value", "ParameterDefinition")
PARAMETER_DEFINITION_ORDER = (
    "HasRules", "Name", "IsOptional", "ParameterType", "ParameterRules", "MarkupType", "HasDefaultValue",
    "DefaultValue", "ScriptName", "ModeValuesInfo", "CredentialDescriptor", "Description", "FriendlyName",
)
# Json.NET only honours "$type" when it is the first member of a polymorphic object.
PARAMETER_RULE_ORDER = ("$type", "Min", "Max", "Values")

# --- volatile: server state that changes on every save, run or GET; kept only in Normalized.volatile ------------

VOLATILE_TOP_LEVEL = ("RunId", "ParentExperimentId", "Status", "Etag", "NodeStatuses", "IsPartialRun")
VOLATILE_NODE = ("IsPartOfPartialRun",)
VOLATILE_WEBSERVICE = ("WebServiceGroupId", "ModelPackageId", "RunId", "ArmWebServiceId")
# How nested volatile fields are named in Normalized.volatile (flat, so the lock can pick Etag/RunId directly).
VOLATILE_NODE_PREFIX = "ModuleNodes."
VOLATILE_WEBSERVICE_PREFIX = "WebService."

# --- identity: per-workspace provenance, kept in amlvc.lock ------------------------------------------------------

# Free-text fields of an experiment: a string or null (an export with another type is refused).
TEXT_FIELDS = ("Description", "Summary")

IDENTITY_TOP_LEVEL = ("ExperimentId", "Creator", "IsLeaf", "Category", "Tags", "OriginalExperimentDocumentationLink")

# --- layout: cosmetic canvas state, kept in layout.json ----------------------------------------------------------

LAYOUT_XML_KEY = "SerializedClientData"  # on Graph and on WebService
LAYOUT_NODE = ("CommentCollapsed",)

# --- redundant fields omitted when they hold their default ("$absent" records a key that was missing) -----------

NODE_ID_DEFAULT = object()  # sentinel: the default of a port's NodeId is the owning node's Id

REDUNDANT_NODE: MappingProxyType[str, Any] = MappingProxyType({"Language": "DotNet", "Version": "4.5.0"})
REDUNDANT_INPUT_PORT: MappingProxyType[str, Any] = MappingProxyType({
    "DataSourceId": None, "TrainedModelId": None, "TransformModuleId": None,
    "Language": "DotNet", "Version": "4.5.0", "PortIndex": None, "NodeId": NODE_ID_DEFAULT,
})
REDUNDANT_OUTPUT_PORT: MappingProxyType[str, Any] = MappingProxyType({"NodeId": NODE_ID_DEFAULT, "OutputType": None})
REDUNDANT_EDGE: MappingProxyType[str, Any] = MappingProxyType({"DestinationInputPortIndex": None})
REDUNDANT_PARAMETER: MappingProxyType[str, Any] = MappingProxyType({
    "ValueType": "Literal", "LinkedGlobalParameter": None,
})
REDUNDANT_GRAPH: MappingProxyType[str, Any] = MappingProxyType({"PublishInfo": None, "Parameters": None})

# --- lists whose items have identity: stored keyed or sorted, compared as sets by verify ------------------------

# The key that names an item of each list (by the list's key in the document): what the canonical form keys or
# sorts by, what diff and merge pair items by.
LIST_KEYS: MappingProxyType[str, str] = MappingProxyType({
    "ModuleNodes": "Id",
    "ModuleParameters": "Name",
    "InputPortsInternal": "Name",
    "OutputPortsInternal": "Name",
    "Inputs": "Id",
    "Outputs": "Id",
    "Parameters": "Name",
})
# The lists of a GET document whose order carries no meaning: verify compares them as sets (items with a
# LIST_KEYS key paired by it).
IDENTITY_LISTS = ("/Graph/ModuleNodes", "/Graph/EdgesInternal", "/WebService/Inputs", "/WebService/Outputs",
                  "/NodeStatuses")

# --- runs, datasets and trained models (SPEC section 1: models/, the object store) ----------------------------------

MODELS_DIR = "models"  # models/<slug of the model's name>.json: one manifest per trained model
MODEL_FORMAT = "amlvc/model@1"
OBJECTS_DIR = f"{STATE_DIR}/objects/sha256"  # content-addressed bytes: <first 2 hex>/<other 62 hex>
ASSET_CATALOG_FILE = f"{STATE_DIR}/assets.json"  # names and versions of asset ids seen in workspaces
# Status.StatusCode of a run that has ended, and those of the ended runs that did not succeed.
RUN_FINAL_STATES = frozenset({"Finished", "Failed", "Canceled", "Cancelled"})
RUN_FAILED_STATES = frozenset({"Failed", "Canceled", "Cancelled"})
# Output ports that carry a trained model (lower-cased names; or OutputType "TrainedModel"), reference §2.4.
MODEL_OUTPUT_PORTS = frozenset({"trained model", "trained best model", "best trained model"})
MODEL_OUTPUT_TYPE = "TrainedModel"
# Dataset formats an upload accepts (reference §2.3), and the one a file extension implies.
UPLOAD_DATA_TYPES = ("GenericCSV", "GenericCSVNoHeader", "GenericTSV", "GenericTSVNoHeader", "ARFF", "Zip", "RData",
                     "PlainText")
UPLOAD_EXTENSIONS: MappingProxyType[str, str] = MappingProxyType({
    ".csv": "GenericCSV", ".tsv": "GenericTSV", ".txt": "PlainText", ".arff": "ARFF", ".zip": "Zip",
    ".rdata": "RData",
})
UPLOAD_CHUNK_BYTES = 2 * 1024 * 1024  # the azureml client's block size (0x200000)
UPLOAD_OWNER = "amlvc"  # DataSource.Owner of uploads (PS sends "PowerShell", the PY client "Python SDK")

# --- asset references on input ports ------------------------------------------------------------------------------

ASSET_PORT_KEYS: MappingProxyType[str, str] = MappingProxyType({
    "DataSourceId": "dataset", "TrainedModelId": "trained-model", "TransformModuleId": "transform",
})
# The owner of Microsoft's built-in modules and samples (the "global" workspace of reference section 1.6).
BUILTIN_OWNER = "506153734175476c4f62416c57734963"
# How each kind of referenced thing reads in messages, plans and diffs.
ASSET_KIND_WORDS: MappingProxyType[str, str] = MappingProxyType({
    "module": "module", "dataset": "dataset", "trainedmodel": "trained model", "transform": "transform",
})
RESOURCE_ID = re.compile(
    r"^(?P<owner>[0-9a-fA-F]{32})\.(?P<family>[0-9a-fA-F]{32})\.v1-(?P<culture>[^.-]+)-(?P<batch>\d+)$"
)

# --- column pickers (reference 3.4): percent-encoded compact JSON written by the browser -------------------------

COLUMN_PICKER_PREFIX = "%7B"  # encodeURIComponent("{")
COLUMN_PICKER_MARKERS = ("isFilter", "rules")
COLUMN_PICKER_KEY_ORDER = ("isFilter", "rules", "ui")
COLUMN_RULE_KEY_ORDER = ("ruleType", "columns", "columnIndexes", "columnTypes", "columnKinds", "exclude")
# encodeURIComponent leaves A-Z a-z 0-9 and these unescaped.
URI_COMPONENT_SAFE = "!~*'()"

# --- scripts: parameters whose value is source code, written as files --------------------------------------------

SCRIPT_PARAMETERS: MappingProxyType[str, str] = MappingProxyType({
    # lower-cased parameter name -> language (Execute R Script, Execute Python Script, Create R Model,
    # Apply SQL Transformation)
    "r script": "r",
    "python script": "python",
    "trainer r script": "r",
    "scorer r script": "r",
    "sql query script": "sql",
})
SCRIPT_EXTENSIONS: MappingProxyType[str, str] = MappingProxyType({"r": ".R", "python": ".py", "sql": ".sql"})

# --- secrets -------------------------------------------------------------------------------------------------------

# Parameter names (words lower-cased, joined by one space) that always hold a secret.
SECRET_PARAMETER_NAMES = frozenset({
    "account key", "storage key", "storage account key", "workspace key", "access key", "api key", "primary key",
    "secondary key", "password", "server user account password", "database password", "user password",
    "sas token", "shared access signature", "connection string", "client secret", "secret", "token",
    "authorization token", "credential", "credentials",
})
# Or whose last word is one of these (storage_key, adminPassword, ...).
SECRET_NAME_LAST_WORDS = frozenset({"key", "password", "passwd", "pwd", "secret", "token", "credential", "credentials"})
SECRET_PARAMETER_TYPES = frozenset({"Credential"})  # WebService ParameterDefinition.ParameterType
# Secrets recognised by shape inside any value: (kind, pattern); group "secret" is the part replaced.
SECRET_VALUE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ACCOUNT_KEY", re.compile(r"(?i)(?:AccountKey|SharedAccessKey)\s*=\s*(?P<secret>[^;\"'\s]+)")),
    # stops at "&" and at its encoded form "%26" (SAS URLs nested in other URLs, reference 3.8)
    ("SAS_SIGNATURE", re.compile(
        r"(?i)(?<![A-Za-z])(?:sig|signature)(?:=|%3D)(?P<secret>(?:[A-Za-z0-9+/=_-]|%(?!26)[0-9A-Fa-f]{2})+)"
    )),
    ("PASSWORD", re.compile(r"(?i)(?<![A-Za-z])(?:Password|pwd)\s*=\s*(?P<secret>[^;\"'\s]+)")),
    ("STORAGE_KEY", re.compile(r"(?<![A-Za-z0-9+/=])(?P<secret>[A-Za-z0-9+/]{86}[A-Za-z0-9+/=]{2})(?![A-Za-z0-9+/=])")),
)
SECRET_PLACEHOLDER = re.compile(r"\$\{secret:(?P<name>[A-Z0-9_]+)\}")
SECRET_ENV_PREFIX = "AMLVC_SECRET_"

# --- well-known module families (reference Appendix A) ------------------------------------------------------------

MODULE_FAMILIES: MappingProxyType[str, str] = MappingProxyType({
    "4e1b0fe6aded4b3fa36f39b8862b9004": "Import Data",
    "1ec722fab6234e26a44ea50c6d726223": "Select Columns in Dataset",
    "90381e8067c34d9987541db785b7ea37": "Apply SQL Transformation",
    "5cc7053eaa30450d96c0dae4be720977": "Train Model",
    "401b4f92e7244d5abe81d5b0ff9bdb33": "Score Model",
    "30806023392b42e094d66b775a6e0fd5": "Execute R Script",
    "314e34a8b24c4870afe62649b6fc7476": "Create R Model",
    "faa6ba63383c4086ba587abf26b85814": "Convert to CSV",
    "72bf58e0fc874bb19704f1805003b975": "Convert to Dataset",
    "1cdbcda42ece49088b87e6b636258d3d": "Convert to TSV",
    "70530644c97a4ab685f788bf30a8be5f": "Split Data",
    "927d65ac3b504694990320f6c1672089": "Evaluate Model",
    "b0fd7660eeed43c5948720d9cc79ed5d": "Two-Class Logistic Regression",
    "e3c522f853d948298ea45c6a6b75330c": "Two-Class Boosted Decision Tree",
    "5a7d5466992840c8a19cd5de4882c77e": "Two-Class Decision Forest",
    "5ed44caa5360407dae6c7a88c491474a": "Two-Class Averaged Perceptron",
    "ebc29f52719d4d0fb66a2ce85f527c7d": "Two-Class Neural Network",
    "12d8479b74b44e67b8ded32867380e20": "Two-Class Support Vector Machine",
    "1d195fe598cd4e1aa1c8076aaa3e02c3": "Multiclass Logistic Regression",
    "5e70108d2e4445d986e894f37c68fe86": "Multiclass Decision Forest",
    "1d67b73134d74adbbc2aa8844cd1bd2d": "MultiClass Boosted Decision Tree",
    "e8b401fb230a4b21bd11d1fda0d57c1f": "Multiclass Neural Network",
    "7191efaeb4b14d03a6f87205f87be664": "One-vs-All Multiclass",
    "0fe9823826734569808ed96852c16e71": "One-vs-One Multiclass",
    "31960a6f789b4cf788d62e1152c0bd1a": "Linear Regression",
    "ee12de502b344145aec023e0485da308": "Bayesian Linear Regression",
    "0207d2526c414c7784c373bdf1ac5960": "Boosted Decision Tree Regression",
    "562988b2e7404e3a8131358391bad755": "Decision Forest Regression",
    "d7ee222c669f4200a576a761a9c1a928": "Neural Network Regression",
    "80e21b9d382740d8b733b53148becbc2": "Poisson Regression",
    "b9064dc32d694e06b3076cebf324686a": "Fast Forest Quantile Regression",
    "5049a09bbd904c4e9b467c87e3a36810": "K-Means Clustering",
    "bb43c744f7fa41d0ae6774ae75da3ffd": "Train Clustering Model",
    "20a0683a07f94a08a89b44b3bbaae382": "Assign Data to Clusters",
    "038d91b6c2f242a192151f2c20ed1b40": "Tune Model Hyperparameters",
    "75fb875d6b864d468bcc74261ade5826": "Cross Validate Model",
    "d2c5ca2f732341a39b7eda917c99f0c4": "Clean Missing Data",
    "986df33367484b85923d871df70d6aaf": "Normalize Data",
    "370b6676c11c486fbf7335349f842a66": "Edit Metadata",
    "a8726e341b3e4515b59a3e4a475654b8": "Partition and Sample",
    "124865f7e9014656adacf4cb08248099": "Join Data",
    "b2ebdabd217d491586cc5b05972f7270": "Add Rows",
    "5714a225befd438a9bb5f6fdc50a4efb": "Add Columns",
    "02016f47e4c34a069ae516c747389e34": "Remove Duplicate Rows",
    "9f3fe1c4520e49aca1522e104169912a": "SMOTE",
    "805e592d0f1f48eb97c9688ed0c1dc70": "Apply Transformation",
    "aa517da1497843ed960ff26cf55bfa95": "Select Columns Transform",
    "6ea59c36f283410eb34cedfabfac39b0": "Convert to Indicator Values",
    "cdb56f957f4c404dbde75bb972e6f232": "Execute Python Script",
    "4fbef0ab2c8e4a25b5c47be76eac33d6": "Enter Data Manually",
    "c9a826602d9c411d81224d9e0b3ce92a": "Feature Hashing",
    "bf9e794a9e2b4662902a0e73b255c135": "Preprocess Text",
    "a8a662d089bb48c985629b9589124c4a": "Extract N-Gram Features from Text",
    "1aec5388415d4f7cb33fc9e9f4c0ce56": "Latent Dirichlet Allocation",
    "818b356b045c412baa1294a1d2dad90f": "Filter Based Feature Selection",
    "2e010ee4714e44e9933e62d8c41818a9": "Permutation Feature Importance",
    "c3822fa510954c72bd1efd43d285153a": "PCA-Based Anomaly Detection",
    "d6acbacea72d44b99878869115e02458": "Train Anomaly Detection Model",
    "9c4d0cb5213e47859cc8d29ce467b9c8": "Evaluate Recommender",
})

# --- web-service definitions (ARM Microsoft.MachineLearning/webServices, Studio webservicedefinition export) -------

WSD_READ_ONLY = ("id", "name", "type", "createdOn", "modifiedOn", "provisioningState", "swaggerLocation")
# camelCase spelling of every known WSD key; input keys are matched case-insensitively against these.
WSD_KNOWN_KEYS = (
    "location", "tags", "properties", "title", "description", "createdOn", "modifiedOn", "provisioningState", "keys",
    "primary", "secondary", "readOnly", "swaggerLocation", "exposeSampleData", "realtimeConfiguration",
    "maxConcurrentCalls", "diagnostics", "level", "expiry", "storageAccount", "key", "machineLearningWorkspace",
    "commitmentPlan", "input", "output", "exampleRequest", "inputs", "globalParameters", "assets", "parameters",
    "packageType", "package", "payloadsInBlobStorage", "payloadsLocation", "uri", "credentials", "nodes", "edges",
    "graphParameters", "assetId", "inputId", "outputId", "value", "certificateThumbprint", "sourceNodeId",
    "sourcePortId", "targetNodeId", "targetPortId", "links", "nodeId", "parameterKey", "type", "format", "enum",
    "x-ms-isnullable", "x-ms-isordered", "id", "name", "locationInfo", "inputPorts", "outputPorts", "metadata",
    "parameterType", "modeValuesInfo", "interfaceString",
)
# Maps whose keys are names chosen by users (or the service), never re-cased: the key is the path of the map,
# as camelCase keys from the root, "*" standing for any key of a user-named map.
WSD_USER_MAPS = frozenset({
    ("tags",),
    ("properties", "assets"),
    ("properties", "assets", "*", "inputPorts"),
    ("properties", "assets", "*", "outputPorts"),
    ("properties", "assets", "*", "metadata"),
    ("properties", "parameters"),
    ("properties", "package", "nodes"),
    ("properties", "package", "nodes", "*", "parameters"),
    ("properties", "package", "graphParameters"),
    ("properties", "input", "properties"),
    ("properties", "input", "properties", "*", "properties"),
    ("properties", "output", "properties"),
    ("properties", "output", "properties", "*", "properties"),
    ("properties", "exampleRequest", "inputs"),
    ("properties", "exampleRequest", "globalParameters"),
})
WSD_EDGE_SORT = ("sourceNodeId", "sourcePortId", "targetNodeId", "targetPortId")

# --- deployed web services (issue 13): webservices/<name>/service.json, models in storage, release plans ---------

WEBSERVICES_DIR = "webservices"  # webservices/<name>/service.json: one folder per deployed web service
SERVICE_FILE = "service.json"
SERVICE_FORMAT = "amlvc/service@1"
SERVICE_KINDS = ("classic", "arm")
LOCK_WEBSERVICES = "webservices"  # amlvc.lock: remotes.<remote>.webservices.<name>
RELEASE_DIR = f"{STATE_DIR}/release"  # .amlvc/release/<plan slug>.json: the progress of `amlvc release`
# A model version as service.json names it: "churn-model@4" (a manifest under models/, by slug or name).
MODEL_REF = re.compile(r"^(?P<name>.+)@(?P<version>[1-9][0-9]{0,8})$")
# The key of a service.json object that amlvc fills at push (a trained-model asset's locationInfo, ARM).
MODEL_REF_KEY = "$model"
TRAINED_MODEL_SUFFIX = " [trained model]"  # endpoint resources and Resource assets are named "<model> [trained model]"
TRAINED_MODEL_DATA_TYPE = "ILearnerDotNet"
# Containers amlvc writes into a service's storage account: models by content (<sha256>.ilearner, so a model is
# uploaded once and its name says which bytes it holds) and batch inputs by content (<sha256><extension>).
MODEL_CONTAINER = "amlvc-models"
BATCH_CONTAINER = "amlvc-batch"
STORAGE_KEY_SECRET = "STORAGE_ACCOUNT_KEY"  # ${secret:STORAGE_ACCOUNT_KEY}: the key of the remote's storage account
STORAGE_API_VERSION = "2015-02-21"  # x-ms-version of the blob calls (Put Blob)
# Classic (management API, reference web-services §3): the default endpoint, the endpoint settings service.json
# keeps (the members of an endpoint PUT), and what it leaves out (keys, host-bearing URLs, times, ids).
DEFAULT_ENDPOINT = "default"
ENDPOINT_SETTINGS = ("Description", "ThrottleLevel", "MaxConcurrentCalls", "PreventUpdate", "DiagnosticsTraceLevel")
ENDPOINT_VOLATILE = ("PrimaryKey", "SecondaryKey", "ApiLocation", "HelpLocation", "ExperimentLocation", "Version",
                     "CreationTime", "WorkspaceId", "WebServiceId", "SampleDataEnabled")
# ARM (reference web-services §2): per-remote parts kept in amlvc.toml (or, for the key, the secrets file), so
# one definition deploys to dev and prod.
ARM_API_VERSION = "2017-01-01"
ARM_HOST = "https://management.azure.com/"
ARM_PER_REMOTE = ("commitmentPlan", "machineLearningWorkspace")  # properties members dropped from service.json
ARM_FINAL_STATES = frozenset({"Succeeded", "Failed", "Canceled"})
BES_API_VERSION = "2.0"
# A job's StatusCode is a string, in one captured sample a number (web-services §8.8); both read as these names.
BES_STATUS_NAMES: MappingProxyType[int, str] = MappingProxyType(
    {0: "NotStarted", 1: "Running", 2: "Failed", 3: "Cancelled", 4: "Finished"})
BES_FINAL_STATES = frozenset({"Finished", "Failed", "Cancelled", "Canceled"})
BES_FAILED_STATES = frozenset({"Failed", "Cancelled", "Canceled"})
