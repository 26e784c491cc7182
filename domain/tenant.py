"""The Tenant aggregate: an organisation using Parley, with its model settings.

Its value objects and the rules of its settings live beside it: `domain/model_settings.py`
(default model, bounds, providers, provider keys), `domain/limits.py`, `domain/api_keys.py` and
`domain/oidc.py`; callers import them from there.
"""

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.domain import event

from domain.api_keys import API_KEY_ROLES, MAX_API_KEYS, ApiKey
from domain.base import TenantScopedAggregate, check_length, check_text, stable_id
from domain.errors import InvalidInput, NotAllowed, NotFound
from domain.limits import Limits
from domain.model_settings import (
    DEFAULT_MODEL,
    MAX_OUTPUT_TOKENS,
    MAX_SYSTEM_PROMPT,
    PROVIDER_NAME,
    ProviderKey,
    checked_providers,
    provider_of,
)
from domain.oidc import (
    DOMAIN_NAME,
    OIDC_PROVISION_ROLES,
    OidcConfig,
    check_web_url,
)

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def tenant_id_for_slug(slug: str) -> UUID:
    """Tenant ids derive from the slug, so the event store itself enforces unique slugs."""
    return stable_id("tenant", slug)


def validate_slug(slug: str) -> str:
    if not isinstance(slug, str) or not SLUG_PATTERN.match(slug):
        raise InvalidInput("slug must be 1..63 lowercase letters, digits or inner hyphens")
    return slug


class Tenant(TenantScopedAggregate):
    TOPIC = "parley.Tenant"

    class Event(TenantScopedAggregate.Event):
        TOPIC = "parley.Tenant.Event"
        tenant_id: UUID

    @staticmethod
    def create_id(tenant_id: UUID, **_: object) -> UUID:  # type: ignore[override]
        return tenant_id

    @classmethod
    def create(cls, *, name: str, slug: str) -> "Tenant":
        slug = validate_slug(slug)
        return cls(
            tenant_id=tenant_id_for_slug(slug),
            name=check_length(name, field="name", low=1, high=200),
            slug=slug,
        )

    @event("Created", topic="parley.Tenant.Created")
    def __init__(self, tenant_id: UUID, name: str, slug: str) -> None:
        self.tenant_id = tenant_id
        self.name = name
        """Display name."""
        self.slug = slug
        """Unique, URL-safe handle used at sign-in."""
        self.default_model = DEFAULT_MODEL
        self.allowed_models: list[str] = [DEFAULT_MODEL]
        self.retention_days: int | None = None
        self.fallback_models: list[str] = []
        """Tried in order when a chat's model fails (the model gateway's fallback chain)."""
        self.system_prompt: str | None = None
        """Sent before every conversation of the tenant."""
        self.cache_ttl_seconds: int | None = None
        """Opt-in exact-match response cache: how long a reply may be reused (None: off)."""
        self.limits = Limits()
        self.enabled_providers: list[str] | None = None
        """Providers the tenant's models may use (None: every provider the platform offers)."""
        self.model_max_tokens: dict[str, int] = {}
        """Cap on reply tokens per model reference (others: the platform default)."""
        self.provider_keys: dict[str, ProviderKey] = {}
        """The tenant's own API keys by provider, sealed under the master key."""
        self.oidc: OidcConfig | None = None
        """OpenID Connect sign-in, when the tenant has configured it."""
        self.active = True
        self.api_keys: dict[str, ApiKey] = {}
        """Service accounts' API keys by key id, revoked ones included (for the audit view)."""

    def rename(self, name: str) -> None:
        self._ensure_active()
        self._renamed(name=check_length(name, field="name", low=1, high=200))

    @event("Renamed", topic="parley.Tenant.Renamed")
    def _renamed(self, name: str) -> None:
        self.name = name

    def change_settings(
        self,
        *,
        default_model: str,
        allowed_models: list[str],
        retention_days: int | None,
        fallback_models: list[str] | None = None,
        system_prompt: str | None = None,
        cache_ttl_seconds: int | None = None,
        limits: "Limits | None" = None,
        enabled_providers: list[str] | None = None,
        model_max_tokens: dict[str, int] | None = None,
    ) -> None:
        """Each optional setting None: keep the current one ("" clears the prompt, 0 turns the
        cache off, a 0 limit removes it, [] lifts the provider restriction, {} clears the
        per-model token caps)."""
        self._ensure_active()
        models = [check_length(m, field="model", low=1, high=100) for m in allowed_models]
        if not models:
            raise InvalidInput("allowed models must not be empty")
        if default_model not in models:
            raise InvalidInput("default model must be one of the allowed models")
        if retention_days is not None and not 1 <= retention_days <= 36500:
            raise InvalidInput("retention days must be 1..36500")
        fallbacks = self.fallback_models if fallback_models is None else fallback_models
        unknown = [m for m in fallbacks if m not in models]
        if unknown:
            raise InvalidInput(f"fallback models must be allowed models: {', '.join(unknown)}")
        if len(fallbacks) > 5:
            raise InvalidInput("at most 5 fallback models")
        if system_prompt is not None:
            check_text(system_prompt, field="system prompt")
        prompt = self.system_prompt if system_prompt is None else system_prompt.strip() or None
        if prompt is not None and len(prompt) > MAX_SYSTEM_PROMPT:
            raise InvalidInput(f"system prompt must be at most {MAX_SYSTEM_PROMPT} characters")
        ttl = self.cache_ttl_seconds if cache_ttl_seconds is None else cache_ttl_seconds or None
        if ttl is not None and not 1 <= ttl <= 30 * 86400:
            raise InvalidInput("cache TTL must be 1..2592000 seconds (0 turns the cache off)")
        new_limits = (self.limits if limits is None else limits).checked()
        providers = checked_providers(enabled_providers, self.enabled_providers, models)
        caps = self.model_max_tokens if model_max_tokens is None else model_max_tokens
        stray = [m for m in caps if m not in models]
        if stray:
            raise InvalidInput(f"max tokens are for allowed models only: {', '.join(stray)}")
        if any(not 1 <= n <= MAX_OUTPUT_TOKENS for n in caps.values()):
            raise InvalidInput(f"max tokens must be 1..{MAX_OUTPUT_TOKENS}")
        self._settings_changed(
            default_model=default_model,
            allowed_models=models,
            retention_days=retention_days,
            fallback_models=list(fallbacks),
            system_prompt=prompt,
            cache_ttl_seconds=ttl,
            user_requests_per_minute=new_limits.user_requests_per_minute,
            tenant_requests_per_minute=new_limits.tenant_requests_per_minute,
            tenant_tokens_per_minute=new_limits.tenant_tokens_per_minute,
            monthly_budget_usd=new_limits.monthly_budget_usd,
            enabled_providers=providers,
            model_max_tokens=dict(caps),
        )

    @event("SettingsChanged", topic="parley.Tenant.SettingsChanged")
    def _settings_changed(
        self,
        default_model: str,
        allowed_models: list[str],
        retention_days: int | None,
        # Optional within version 1 (absent from events recorded before the model gateway).
        fallback_models: list[str] | None = None,
        system_prompt: str | None = None,
        cache_ttl_seconds: int | None = None,
        user_requests_per_minute: int | None = None,
        tenant_requests_per_minute: int | None = None,
        tenant_tokens_per_minute: int | None = None,
        monthly_budget_usd: float | None = None,
        enabled_providers: list[str] | None = None,
        model_max_tokens: dict[str, int] | None = None,
    ) -> None:
        self.default_model = default_model
        self.allowed_models = list(allowed_models)
        self.retention_days = retention_days
        if fallback_models is not None:
            self.fallback_models = list(fallback_models)
        self.system_prompt = system_prompt
        self.cache_ttl_seconds = cache_ttl_seconds
        self.limits = Limits(
            user_requests_per_minute,
            tenant_requests_per_minute,
            tenant_tokens_per_minute,
            monthly_budget_usd,
        )
        self.enabled_providers = list(enabled_providers) if enabled_providers else None
        self.model_max_tokens = dict(model_max_tokens or {})

    def provider_enabled(self, model: str) -> bool:
        return self.enabled_providers is None or provider_of(model) in self.enabled_providers

    def set_provider_key(self, *, provider: str, sealed: str, fingerprint: str, last4: str) -> None:
        self._ensure_active()
        if not PROVIDER_NAME.fullmatch(provider):
            raise InvalidInput("provider must be a provider name such as openai or anthropic")
        self._provider_key_set(
            provider=provider, sealed_key=sealed, fingerprint=fingerprint, last4=last4
        )

    @event("ProviderKeySet", topic="parley.Tenant.ProviderKeySet")
    def _provider_key_set(
        self, provider: str, sealed_key: str, fingerprint: str, last4: str
    ) -> None:
        self.provider_keys[provider] = ProviderKey(provider, sealed_key, fingerprint, last4)

    def remove_provider_key(self, provider: str) -> None:
        self._ensure_active()
        if provider not in self.provider_keys:
            raise NotFound(f"no {provider} key is set")
        self._provider_key_removed(provider=provider)

    @event("ProviderKeyRemoved", topic="parley.Tenant.ProviderKeyRemoved")
    def _provider_key_removed(self, provider: str) -> None:
        self.provider_keys.pop(provider, None)

    def configure_oidc(
        self,
        *,
        issuer: str,
        client_id: str,
        sealed_client_secret: str | None,
        allowed_domains: list[str],
        auto_provision_role: str | None,
        redirect_uris: list[str],
    ) -> None:
        self._ensure_active()
        issuer = check_web_url(issuer, field="issuer")
        if urlsplit(issuer).query:
            raise InvalidInput("issuer must not have a query")
        domains = list(dict.fromkeys(d.strip().lower() for d in allowed_domains))
        bad = [d for d in domains if not DOMAIN_NAME.match(d)]
        if bad or len(domains) > 50:
            raise InvalidInput(f"allowed domains must be up to 50 domain names: {', '.join(bad)}")
        if auto_provision_role is not None:
            if auto_provision_role not in OIDC_PROVISION_ROLES:
                raise InvalidInput("autoProvisionRole must be member or auditor")
            if not domains:
                raise InvalidInput("autoProvisionRole needs allowedDomains (whose users join)")
        uris = list(dict.fromkeys(check_web_url(u, field="redirect URI") for u in redirect_uris))
        if not 1 <= len(uris) <= 20:
            raise InvalidInput("give 1..20 redirect URIs")
        self._oidc_configured(
            issuer=issuer,
            client_id=check_length(client_id, field="clientId", low=1, high=255),
            sealed_client_secret=sealed_client_secret,
            allowed_domains=domains,
            auto_provision_role=auto_provision_role,
            redirect_uris=uris,
        )

    @event("OidcConfigured", topic="parley.Tenant.OidcConfigured")
    def _oidc_configured(
        self,
        issuer: str,
        client_id: str,
        sealed_client_secret: str | None,
        allowed_domains: list[str],
        auto_provision_role: str | None,
        redirect_uris: list[str],
    ) -> None:
        self.oidc = OidcConfig(
            issuer,
            client_id,
            sealed_client_secret,
            tuple(allowed_domains),
            auto_provision_role,
            tuple(redirect_uris),
        )

    def remove_oidc(self) -> None:
        self._ensure_active()
        if self.oidc is None:
            raise NotFound("OIDC sign-in is not configured")
        self._oidc_removed()

    @event("OidcRemoved", topic="parley.Tenant.OidcRemoved")
    def _oidc_removed(self) -> None:
        self.oidc = None

    def deactivate(self) -> None:
        if self.active:
            self._deactivated()

    @event("Deactivated", topic="parley.Tenant.Deactivated")
    def _deactivated(self) -> None:
        self.active = False

    def resolve_model(self, requested: str | None) -> str:
        """The model a new chat uses: the requested one if allowed, else the tenant default."""
        model = requested or self.default_model
        if model not in self.allowed_models:
            raise InvalidInput(f"model {model!r} is not allowed in this tenant")
        return model

    def _ensure_active(self) -> None:
        if not self.active:
            raise NotAllowed("tenant is deactivated")

    def create_api_key(
        self, *, key_id: str, name: str, role: str, secret_sha256: str, last4: str
    ) -> None:
        self._ensure_active()
        if role not in API_KEY_ROLES:
            raise InvalidInput("an API key's role must be member, auditor or tenant_admin")
        if key_id in self.api_keys:
            raise InvalidInput("an API key with this id exists")
        if sum(k.revoked_at is None for k in self.api_keys.values()) >= MAX_API_KEYS:
            raise InvalidInput(f"at most {MAX_API_KEYS} API keys; revoke unused ones first")
        self._api_key_created(
            key_id=key_id,
            key_name=check_length(name, field="name", low=1, high=100),
            role=role,
            secret_sha256=secret_sha256,
            last4=last4,
            created_at=datetime.now(UTC),
        )

    @event("ApiKeyCreated", topic="parley.Tenant.ApiKeyCreated")
    def _api_key_created(
        self,
        key_id: str,
        key_name: str,
        role: str,
        secret_sha256: str,
        last4: str,
        created_at: datetime,
    ) -> None:
        self.api_keys[key_id] = ApiKey(key_id, key_name, role, secret_sha256, last4, created_at)

    def revoke_api_key(self, key_id: str) -> None:
        """Revoking a revoked key changes nothing."""
        key = self.api_keys.get(key_id)
        if key is None:
            raise NotFound("API key not found")
        if key.revoked_at is None:
            self._api_key_revoked(key_id=key_id, revoked_at=datetime.now(UTC))

    @event("ApiKeyRevoked", topic="parley.Tenant.ApiKeyRevoked")
    def _api_key_revoked(self, key_id: str, revoked_at: datetime) -> None:
        key = self.api_keys[key_id]
        self.api_keys[key_id] = ApiKey(
            key.key_id, key.name, key.role, key.secret_sha256, key.last4, key.created_at, revoked_at
        )
