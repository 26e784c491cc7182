"""Which providers this deployment has: built from settings and the providers' own standard
environment variables (platform defaults; tenants' own keys come with tenant configuration)."""

import logging
import os
from collections.abc import Mapping

from infra.llm.base import ChatProvider
from infra.llm.echo import EchoProvider
from infra.settings import Settings

log = logging.getLogger(__name__)


def build_providers(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> dict[str, ChatProvider]:
    """By provider name: `echo` always; the others when their key (or server) is configured."""
    env = os.environ if environ is None else environ
    providers: dict[str, ChatProvider] = {"echo": EchoProvider(settings.echo_delay_ms / 1000)}
    platform_keys = {
        "openai": env.get("OPENAI_API_KEY"),
        "azure": env.get("AZURE_OPENAI_API_KEY") if env.get("AZURE_OPENAI_ENDPOINT") else None,
        "anthropic": env.get("ANTHROPIC_API_KEY"),
        "google": env.get("GEMINI_API_KEY") or env.get("GOOGLE_API_KEY"),
    }
    for name, api_key in platform_keys.items():
        if api_key:
            provider = keyed_provider(
                name, api_key, settings, env, organization=env.get("OPENAI_ORG_ID") or None
            )
            if provider is not None:
                providers[name] = provider
    for name, server in settings.llm_compatible.items():
        if name in providers:
            raise ValueError(f"PARLEY_LLM_COMPATIBLE: {name!r} is taken by a built-in provider")
        compatible = keyed_provider(name, server.get("api_key") or None, settings, env)
        assert compatible is not None  # a configured compatible server always has a provider
        providers[name] = compatible
    log.info("model providers: %s", ", ".join(sorted(providers)))
    return providers


def keyed_provider(
    name: str,
    api_key: str | None,
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    *,
    organization: str | None = None,
) -> ChatProvider | None:
    """The provider `name` with the given key: the platform's (from `build_providers`) or a
    tenant's own, on the same endpoints. `organization` applies to OpenAI only."""
    env = os.environ if environ is None else environ
    timeout = settings.llm_timeout_seconds
    if name in settings.llm_compatible:
        from infra.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(
            name=name,
            api_key=api_key,
            base_url=settings.llm_compatible[name]["base_url"],
            timeout=timeout,
        )
    if api_key is None:
        return None
    if name == "openai":
        from infra.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(
            name="openai",
            api_key=api_key,
            base_url=env.get("OPENAI_BASE_URL") or None,
            organization=organization,
            timeout=timeout,
            max_tokens_param="max_completion_tokens",
        )
    if name == "anthropic":
        from infra.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(
            name="anthropic",
            api_key=api_key,
            base_url=env.get("ANTHROPIC_BASE_URL") or None,
            timeout=timeout,
            default_max_tokens=settings.llm_max_output_tokens,
        )
    if name == "google":
        from infra.llm.google_provider import GoogleProvider

        return GoogleProvider(
            name="google",
            api_key=api_key,
            base_url=env.get("GOOGLE_GEMINI_BASE_URL") or None,
            timeout=timeout,
        )
    if name == "azure" and env.get("AZURE_OPENAI_ENDPOINT"):
        from infra.llm.openai_provider import AzureOpenAIProvider

        return AzureOpenAIProvider(
            name="azure",
            azure_endpoint=env["AZURE_OPENAI_ENDPOINT"],
            api_version=env.get("OPENAI_API_VERSION") or "2024-10-21",
            api_key=api_key,
            timeout=timeout,
        )
    return None


def cost_nanos(prices: Mapping[str, Mapping[str, float]], ref: str, inp: int, out: int) -> int:
    """Price of a reply in billionths of a dollar: exact for prices to a thousandth of a dollar
    per million tokens (USD per million tokens × 1,000 = nano-USD per token)."""
    price = prices.get(ref)
    if price is None:
        return 0
    return round(inp * price.get("input", 0.0) * 1000 + out * price.get("output", 0.0) * 1000)
