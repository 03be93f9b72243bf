"""miniship's tables, the release state machine and every write (see store.py), and the
vault of run-time platform credentials (vault.py)."""

from storage.db import UnfitDatabase, describe_url, make_engine, migrate, schema_revision
from storage.states import (
    FleetState,
    InvalidTransition,
    ItemState,
    ReleaseState,
    RolloutState,
    TimedState,
)
from storage.store import (
    ACTIVE_ROLLOUT,
    ActionTaken,
    ConfirmationRefused,
    LinkRefused,
    RolloutTaken,
    StaleState,
    Store,
    TargetExists,
    TargetView,
    TokenTaken,
)
from storage.vault import (
    CredentialError,
    MisplacedCredential,
    SecretKeyError,
    Vault,
    VaultError,
    WrongSecretKey,
    vault_keys,
)

__all__ = [
    "ACTIVE_ROLLOUT",
    "ActionTaken",
    "ConfirmationRefused",
    "CredentialError",
    "FleetState",
    "InvalidTransition",
    "ItemState",
    "LinkRefused",
    "MisplacedCredential",
    "ReleaseState",
    "RolloutState",
    "RolloutTaken",
    "SecretKeyError",
    "StaleState",
    "Store",
    "TargetExists",
    "TargetView",
    "TimedState",
    "TokenTaken",
    "UnfitDatabase",
    "Vault",
    "VaultError",
    "WrongSecretKey",
    "describe_url",
    "make_engine",
    "migrate",
    "schema_revision",
    "vault_keys",
]
