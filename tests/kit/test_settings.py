"""The settings every service shares, read once by the kit: one migrate-on-start
rule and variable for all, and the old per-service variable refused by name
rather than silently ignored."""

from __future__ import annotations

import pytest

from mendkit.settings import SettingsError, Shared


@pytest.mark.parametrize(("database_url", "variable", "expected"), [
    ("", None, True),  # the embedded database migrates itself
    ("postgresql://db.example/mend", None, False),  # a managed one is migrated by `migrate` (the Helm hook)
    ("postgresql://db.example/mend", "true", True),
    ("", "false", False),
])
def test_one_migrate_on_start_rule_for_every_service(monkeypatch, database_url, variable, expected):
    monkeypatch.setenv("DATABASE_URL", database_url)
    if variable is None:
        monkeypatch.delenv("MEND_MIGRATE_ON_START", raising=False)
    else:
        monkeypatch.setenv("MEND_MIGRATE_ON_START", variable)
    assert Shared.from_env().migrate_on_start is expected


def test_the_old_interactions_variable_is_refused_naming_the_new_one(monkeypatch):
    monkeypatch.setenv("INTERACTIONS_MIGRATE_ON_START", "true")
    with pytest.raises(SettingsError, match="INTERACTIONS_MIGRATE_ON_START is now MEND_MIGRATE_ON_START"):
        Shared.from_env()
