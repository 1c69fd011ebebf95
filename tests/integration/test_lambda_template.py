"""The SAM template in lambda/: valid for cfn-lint, and the role grants only what it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint, lint_file
from cfnlint.decode import decode_str

TEMPLATE = Path(__file__).resolve().parents[2] / "lambda" / "template.yaml"
REGIONS = ["us-east-1", "eu-west-1"]


def template() -> Any:
    decoded, errors = decode_str(TEMPLATE.read_text())
    assert not errors, errors
    return decoded


def statements() -> list[dict[str, Any]]:
    role = template()["Resources"]["ThumbnailRole"]["Properties"]
    (policy,) = role["Policies"]
    found = []
    for statement in policy["PolicyDocument"]["Statement"]:
        if "Fn::If" in statement:  # [condition, statement, AWS::NoValue]
            statement = statement["Fn::If"][1]
        found.append(statement)
    return found


def test_cfn_lint_finds_nothing_wrong_with_the_template() -> None:
    matches = lint_file(TEMPLATE, config=ManualArgs(regions=REGIONS))

    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches] == []


def test_cfn_lint_does_check_it() -> None:
    broken = TEMPLATE.read_text().replace("Runtime: python3.12", "Runtime: python2.7")

    assert "E2533" in {m.rule.id for m in lint(broken, regions=REGIONS)}


def test_the_function_is_declared_as_the_package_builds_it() -> None:
    function = template()["Resources"]["ThumbnailFunction"]

    assert template()["Transform"] == "AWS::Serverless-2016-10-31"
    assert function["Type"] == "AWS::Serverless::Function"
    properties = function["Properties"]
    assert properties["Handler"] == "handler.handler"
    assert properties["CodeUri"] == "build/imagify-thumbnails.zip"
    assert (properties["MemorySize"], properties["Timeout"]) == (1024, 30)
    assert properties["Architectures"] == [{"Ref": "Architecture"}]
    assert set(properties["Environment"]["Variables"]) == {
        "IMAGIFY_STORAGE_URL", "IMAGIFY_MAX_IMAGE_PIXELS", "IMAGIFY_MAX_UPLOAD_BYTES",
    }  # fmt: skip


@pytest.mark.parametrize(
    "action, resources",
    [
        ("s3:GetObject", ["arn:${AWS::Partition}:s3:::${Bucket}/${Prefix}originals/*",
                          "arn:${AWS::Partition}:s3:::${Bucket}/${Prefix}previews/*"]),
        ("s3:PutObject", ["arn:${AWS::Partition}:s3:::${Bucket}/${Prefix}thumbnails/*"]),
    ],
)  # fmt: skip
def test_the_role_reaches_only_its_own_prefixes(action: str, resources: list[str]) -> None:
    granting = [
        s
        for s in statements()
        if action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]

    assert [s["Resource"] for s in granting] == [{"Fn::Sub": r} for r in resources]


def test_the_role_has_no_wildcard_actions_and_no_other_s3_access() -> None:
    actions: list[str] = []
    for statement in statements():
        actions += (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )

    assert not [a for a in actions if "*" in a]
    assert sorted(a for a in actions if a.startswith("s3")) == [
        "s3-object-lambda:WriteGetObjectResponse", "s3:GetObject", "s3:GetObject", "s3:PutObject",
    ]  # fmt: skip
