"""What a tenant sets about the models its chats use, beyond the Tenant aggregate itself: the
default model, the bounds on the system prompt and on reply tokens, provider names and which
provider a model reference names, the rule tying allowed models to enabled providers, and the
tenant's own provider keys (`ProviderKey`)."""

import re
from dataclasses import dataclass

from domain.errors import InvalidInput

DEFAULT_MODEL = "echo"
MAX_SYSTEM_PROMPT = 8000
PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_-]{1,30}")
MAX_OUTPUT_TOKENS = 1_000_000


def provider_of(model: str) -> str:
    """The provider part of a model reference ("openai/gpt-4o" -> "openai"; "echo" -> "echo")."""
    return model.split("/", 1)[0]


@dataclass(frozen=True)
class ProviderKey:
    """A tenant's own API key for a provider: only the sealed form is kept."""

    provider: str
    sealed: str
    fingerprint: str
    last4: str


def checked_providers(
    requested: list[str] | None, current: list[str] | None, models: list[str]
) -> list[str]:
    """The enabled providers to record ([] = no restriction): `requested`, or `current` when
    None; every allowed model must use one of them."""
    providers = (current or []) if requested is None else list(dict.fromkeys(requested))
    bad = [p for p in providers if not PROVIDER_NAME.fullmatch(p)]
    if bad:
        raise InvalidInput(f"not provider names: {', '.join(bad)}")
    if providers:
        off = [m for m in models if provider_of(m) not in providers]
        if off:
            raise InvalidInput(
                f"allowed models use providers that are not enabled: {', '.join(off)}"
            )
    return providers
