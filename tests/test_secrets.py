"""Secret detection by name, credential descriptor and value shape; placeholders and their filling."""

from __future__ import annotations

import pytest

from amlvc.canonical import secrets
from amlvc.errors import MissingSecret

KEY88 = "oM4uBj0DgLlLz1k8LMc24nszq2qWc40SfLzT0shNmwWgzi4GPQOAuUvPWTwsxzbiezOrapZzjRJ8vNPSyE2bBaDO"
KEY88_PADDED = "A" * 86 + "=="


@pytest.mark.parametrize(("name", "secret"), [
    ("Account Key", True), ("storage_key", True), ("workspace_key", True), ("storageKey", True),
    ("Server User Account Password", True), ("adminPassword", True), ("pwd", True), ("SAS token", True),
    ("Connection string", True), ("client secret", True),
    ("keywords", False), ("Stratification key column", False), ("Account Name", False), ("Label column", False),
    ("Key column", False), ("", False), ("Random seed", False),
])
def test_secret_by_name(name: str, secret: bool) -> None:
    assert secrets.is_secret_name(name) is secret


def test_credential_definitions() -> None:
    assert secrets.is_credential_definition({"ParameterType": "Credential"})
    assert secrets.is_credential_definition({"ParameterType": "String", "CredentialDescriptor": {"x": 1}})
    assert not secrets.is_credential_definition({"ParameterType": "String", "CredentialDescriptor": None})
    assert not secrets.is_credential_definition(None)


@pytest.mark.parametrize(("value", "expected", "found"), [
    (f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={KEY88};EndpointSuffix=core.windows.net",
     "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=${secret:CONN_7};EndpointSuffix=core.windows.net",
     [KEY88]),
    ("https://a.blob.core.windows.net/c/b?sv=2015-02-21&sr=b&sig=Wn92MO07%2Fena6yPHuQ%3D&st=2016&sp=r",
     "https://a.blob.core.windows.net/c/b?sv=2015-02-21&sr=b&sig=${secret:CONN_7}&st=2016&sp=r",
     ["Wn92MO07%2Fena6yPHuQ%3D"]),
    # a SAS URL nested (percent-encoded) in another URL stops at the encoded "&"
    ("sharedAccessUri=https%3A%2F%2Fa%2Fb%3Fsv%3D2015%26sig%3DNxUm%2FIpC%3D%26st%3D2016",
     "sharedAccessUri=https%3A%2F%2Fa%2Fb%3Fsv%3D2015%26sig%3D${secret:CONN_7}%26st%3D2016",
     ["NxUm%2FIpC%3D"]),
    ("Server=tcp:x;User ID=u;Password=p@ss w;Encrypt=True", "Server=tcp:x;User ID=u;Password=${secret:CONN_7} w;"
     "Encrypt=True", ["p@ss"]),
    ("Driver={x};Uid=u;Pwd=s3cr3t", "Driver={x};Uid=u;Pwd=${secret:CONN_7}", ["s3cr3t"]),
    (KEY88, "${secret:CONN_7}", [KEY88]),
    (f"key = '{KEY88_PADDED}'", "key = '${secret:CONN_7}'", [KEY88_PADDED]),
    ("A" * 89, "A" * 89, []),  # not a storage key: too long
    ("https://example.com/path?design=1&signal=2", "https://example.com/path?design=1&signal=2", []),
    ("plain value", "plain value", []),
    ("AccountKey=${secret:KEEP}", "AccountKey=${secret:KEEP}", []),  # already a placeholder
])
def test_secret_by_shape(value: str, expected: str, found: list[str]) -> None:
    namer = secrets.SecretNamer()
    assert secrets.scrub(value, "conn", "abc-7", namer, whole=False) == expected
    assert list(namer.found.values()) == found


def test_whole_values_and_names() -> None:
    namer = secrets.SecretNamer()
    assert secrets.scrub("k1", "Account Key", "cca36f67-6d96-4159-aab0-600570d0d1c0-172", namer, whole=True) \
        == "${secret:ACCOUNT_KEY_172}"
    # the same name on another node with the same counter: the node id's first 8 hex break the tie
    assert secrets.scrub("k2", "Account Key", "dddd0000-6d96-4159-aab0-600570d0d1c0-172", namer, whole=True) \
        == "${secret:ACCOUNT_KEY_172_DDDD0000}"
    assert secrets.scrub("k3", "Account Key", "dddd0000-6d96-4159-aab0-600570d0d1c0-172", namer, whole=True) \
        == "${secret:ACCOUNT_KEY_172_DDDD0000_2}"
    assert secrets.scrub("", "Account Key", "x-1", namer, whole=True) == ""
    assert secrets.scrub("${secret:X}", "Account Key", "x-1", namer, whole=True) == "${secret:X}"
    assert secrets.scrub("v", "Clé d'accès", None, namer, whole=True) == "${secret:CL_D_ACC_S}"
    assert secrets.scrub("v", "名前", None, namer, whole=True) == "${secret:SECRET}"
    assert namer.found["ACCOUNT_KEY_172"] == "k1"


def test_fill() -> None:
    values = {"A_1": "x$y\\1", "B": "z"}
    assert secrets.fill("a=${secret:A_1};b=${secret:B}", values, "f", "/p") == "a=x$y\\1;b=z"
    assert secrets.fill("${secret:A_1}", None, "f", "/p") == "${secret:A_1}"
    assert secrets.fill("no placeholder", {}, "f", "/p") == "no placeholder"
    with pytest.raises(MissingSecret) as info:
        secrets.fill("${secret:C}", values, "exp/experiment.json", ("/Graph", "x"))
    assert info.value.message == ("exp/experiment.json: /Graph/x: no value for secret C; set AMLVC_SECRET_C "
                                  "or add it to .amlvc/secrets.json")


def test_placeholder_names() -> None:
    assert secrets.placeholder_names("${secret:A} ${secret:b} ${secret:C_2}") == ["A", "C_2"]
