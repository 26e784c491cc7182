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
    timeout = settings.llm_timeout_seconds
    providers: dict[str, ChatProvider] = {"echo": EchoProvider(settings.echo_delay_ms / 1000)}
    if env.get("OPENAI_API_KEY"):
        from infra.llm.openai_provider import OpenAIProvider

        providers["openai"] = OpenAIProvider(
            name="openai",
            api_key=env["OPENAI_API_KEY"],
            base_url=env.get("OPENAI_BASE_URL") or None,
            organization=env.get("OPENAI_ORG_ID") or None,
            timeout=timeout,
            max_tokens_param="max_completion_tokens",
        )
    if env.get("AZURE_OPENAI_API_KEY") and env.get("AZURE_OPENAI_ENDPOINT"):
        from infra.llm.openai_provider import AzureOpenAIProvider

        providers["azure"] = AzureOpenAIProvider(
            name="azure",
            azure_endpoint=env["AZURE_OPENAI_ENDPOINT"],
            api_version=env.get("OPENAI_API_VERSION") or "2024-10-21",
            api_key=env["AZURE_OPENAI_API_KEY"],
            timeout=timeout,
        )
    if env.get("ANTHROPIC_API_KEY"):
        from infra.llm.anthropic_provider import AnthropicProvider

        providers["anthropic"] = AnthropicProvider(
            name="anthropic",
            api_key=env["ANTHROPIC_API_KEY"],
            base_url=env.get("ANTHROPIC_BASE_URL") or None,
            timeout=timeout,
            default_max_tokens=settings.llm_max_output_tokens,
        )
    google_key = env.get("GEMINI_API_KEY") or env.get("GOOGLE_API_KEY")
    if google_key:
        from infra.llm.google_provider import GoogleProvider

        providers["google"] = GoogleProvider(
            name="google",
            api_key=google_key,
            base_url=env.get("GOOGLE_GEMINI_BASE_URL") or None,
            timeout=timeout,
        )
    for name, server in settings.llm_compatible.items():
        if name in providers:
            raise ValueError(f"PARLEY_LLM_COMPATIBLE: {name!r} is taken by a built-in provider")
        from infra.llm.openai_provider import OpenAIProvider

        providers[name] = OpenAIProvider(
            name=name,
            api_key=server.get("api_key") or None,
            base_url=server["base_url"],
            timeout=timeout,
        )
    log.info("model providers: %s", ", ".join(sorted(providers)))
    return providers


def keyed_provider(
    name: str, api_key: str, settings: Settings, environ: Mapping[str, str] | None = None
) -> ChatProvider | None:
    """The provider `name` with a tenant's own key (same endpoints as the platform's)."""
    env = os.environ if environ is None else environ
    timeout = settings.llm_timeout_seconds
    if name == "openai":
        from infra.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(
            name="openai",
            api_key=api_key,
            base_url=env.get("OPENAI_BASE_URL") or None,
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
    if name in settings.llm_compatible:
        from infra.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(
            name=name,
            api_key=api_key,
            base_url=settings.llm_compatible[name]["base_url"],
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
