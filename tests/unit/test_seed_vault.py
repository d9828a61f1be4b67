"""The prize draw's seed vault on moto's KMS: a sealed seed opens with its own program and
month only, and the settings use a key on AWS alone (the local stack has no KMS)."""

from __future__ import annotations

import secrets

import boto3
import pytest

from shared import composition
from shared.dal.seed_vault import KmsSeedVault
from shared.settings import settings


@pytest.fixture
def vault(moto_table: str) -> KmsSeedVault:
    del moto_table  # moto's mock (KMS with it) and the function's env
    kms = boto3.client("kms")
    key = kms.create_key(Description="seeds")["KeyMetadata"]["KeyId"]
    return KmsSeedVault(kms, key)


def test_a_sealed_seed_opens_for_its_own_draw_only(vault: KmsSeedVault) -> None:
    seed = secrets.token_hex(32)
    sealed = vault.seal(seed, "customer-rewards", "2026-11")
    assert bytes.fromhex(seed) not in sealed and seed.encode() not in sealed
    assert vault.unseal(sealed, "customer-rewards", "2026-11") == seed
    for program, month in (("customer-rewards", "2026-12"), ("other", "2026-11")):
        with pytest.raises(vault.client.exceptions.InvalidCiphertextException):
            vault.unseal(sealed, program, month)  # copied to another draw: it does not open


def test_the_key_is_used_on_aws_and_never_on_the_local_stack(
    moto_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    del moto_table
    monkeypatch.setenv("DRAW_SEED_KEY_ID", "key-1")
    monkeypatch.delenv("SAMLITE_STATE_DIR", raising=False)
    composition.reset()  # the settings too
    assert settings().draw_seed_key == "key-1"
    vault = composition.draw_repository().vault
    assert isinstance(vault, KmsSeedVault) and vault.key_id == "key-1"
    monkeypatch.setenv("SAMLITE_STATE_DIR", "/tmp/state")
    composition.reset()
    assert settings().draw_seed_key is None
    assert composition.draw_repository().vault is None
