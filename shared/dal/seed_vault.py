"""Where a prize draw's seed is kept until the draw (docs/campaigns.md, "Keeping the seed
secret"): sealed with a KMS key that only the ``prize_draw`` function may use, bound to its
program and month (KMS's encryption context), so a reader of the table before the draw sees
ciphertext and its hash, never the seed. After the draw the seed is written in the clear: it is
published then, for anyone to re-check the winners.
"""

from __future__ import annotations

from typing import Any, Protocol


class SeedVault(Protocol):
    def seal(self, seed: str, program_id: str, month: str) -> bytes: ...

    def unseal(self, sealed: bytes, program_id: str, month: str) -> str: ...


class KmsSeedVault:
    """KMS ``Encrypt``/``Decrypt`` of the seed's 32 bytes with ``key_id`` (a symmetric key);
    the program and month are the encryption context: a sealed seed copied to another month's
    item does not open there."""

    def __init__(self, client: Any, key_id: str) -> None:
        self.client = client
        self.key_id = key_id

    @staticmethod
    def _context(program_id: str, month: str) -> dict[str, str]:
        return {"purpose": "prize-draw-seed", "programId": program_id, "month": month}

    def seal(self, seed: str, program_id: str, month: str) -> bytes:
        answer = self.client.encrypt(
            KeyId=self.key_id,
            Plaintext=bytes.fromhex(seed),
            EncryptionContext=self._context(program_id, month),
        )
        return bytes(answer["CiphertextBlob"])

    def unseal(self, sealed: bytes, program_id: str, month: str) -> str:
        answer = self.client.decrypt(
            CiphertextBlob=sealed,
            KeyId=self.key_id,
            EncryptionContext=self._context(program_id, month),
        )
        return bytes(answer["Plaintext"]).hex()
