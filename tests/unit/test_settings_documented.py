"""Every setting is documented where a newcomer looks: .env.example and the README table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imagify.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
VARIABLES = [PREFIX + field.upper() for field in Settings.__struct_fields__]


@pytest.mark.parametrize("variable", VARIABLES)
def test_every_setting_is_in_env_example(variable):
    assert re.search(rf"^#?\s*{variable}=", (ROOT / ".env.example").read_text(), re.M), (
        f"add a line '# {variable}=<default>' to .env.example"
    )


@pytest.mark.parametrize("variable", VARIABLES)
def test_every_setting_has_a_row_in_the_readme_table(variable):
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `")]
    assert any(f"`{variable}`" in row.split("|")[1] for row in rows), (
        f"add a row for {variable} to the README's configuration table"
    )
