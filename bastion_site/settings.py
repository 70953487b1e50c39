"""Bastion settings: one module, every value driven by the environment (django-environ)."""

import base64
import os
import secrets
from pathlib import Path

import environ

from bastion_site import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_FILE = Path(os.environ.get("BASTION_ENV_FILE") or BASE_DIR / ".env")

env = environ.Env()
if ENV_FILE.exists():
    env.read_env(str(ENV_FILE), overwrite=False)

BASTION_ENV = env.str("BASTION_ENV", default="development")
IS_PRODUCTION = BASTION_ENV == "production"


def _ensure_development_env_file() -> None:
    """Write a development secret key and encryption key into the ignored .env on first run."""
    if IS_PRODUCTION or ENV_FILE.exists():
        return
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    ENV_FILE.write_text(
        "# Generated for local development on first run. Never commit this file.\n"
        f"DJANGO_SECRET_KEY={secrets.token_urlsafe(48)}\n"
        f"BASTION_ENCRYPTION_KEYS=dev1:{key}\n"
    )
    env.read_env(str(ENV_FILE), overwrite=False)


_ensure_development_env_file()


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"Bastion cannot start: the environment variable {name} is required in production.")
    return value


SECRET_KEY = _required("DJANGO_SECRET_KEY") if IS_PRODUCTION else env.str("DJANGO_SECRET_KEY", default="dev-insecure")
DEBUG = env.bool("DJANGO_DEBUG", default=not IS_PRODUCTION)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"] if not IS_PRODUCTION else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# AES-256-GCM keyring: "kid:base64key,kid2:base64key"; the first entry is the primary.
BASTION_ENCRYPTION_KEYS = _required("BASTION_ENCRYPTION_KEYS") if IS_PRODUCTION else env.str("BASTION_ENCRYPTION_KEYS", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    # Bastion apps, bottom layer first: an import goes down this list, never up.
    "common",
    "accounts",
    "integrations",
    "people",
    "sync",
    "scenarios",
    "forms_engine",
    "playbooks",
    "data_rights",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "common.error_pages.RequestReferenceMiddleware",
    "common.middleware.RequestSizeLimitMiddleware",
    "common.middleware.InvalidInputMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "common.middleware.PageRateLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "common.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "bastion_site.urls"
WSGI_APPLICATION = "bastion_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "common.context_processors.navigation",
                "integrations.context_processors.attention_banners",
            ],
        },
    }
]

# One engine everywhere: PostgreSQL and Redis. Production names them; elsewhere they default to the embedded servers
# `make demo` starts from wheels (bastion_site/embedded.py), so the demo takes the same code paths as production.
if IS_PRODUCTION:
    _required("DATABASE_URL")
    _required("REDIS_URL")
DATABASES = {"default": env.db("DATABASE_URL", default=embedded.default_database_url())}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="") or embedded.default_redis_url()
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "sync.scheduler:SyncDispatchingScheduler"  # per-source syncs go through the dispatcher
CELERY_TIMEZONE = "UTC"
# Every task has a time limit (soft: the task can clean up; hard: the worker kills it); a longer one sets its own (CSV imports).
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=660)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    # A broker that vanishes without closing the socket (failover, NAT timeout) is noticed instead of waited on forever.
    "socket_keepalive": True,
    "socket_connect_timeout": 5,
    "health_check_interval": 25,
}
# A worker reconnects to a restarted or unreachable broker for as long as it takes (Celery's default gives up after 100
# attempts, roughly an hour, and the worker exits), also when the broker is down at start-up. bastion_site/broker.py
# fixes the Redis transport so that reconnecting works with late-acked tasks in flight.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Tasks running when the broker connection drops finish and are acked once it is back. Cancelling them (Celery 6's
# default) would leave their messages to Redis' restore, which fails while the broker is down: the message would wait
# for the visibility timeout, or be gone if the restarted Redis kept no data, so cancelling loses work on Redis.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# Invitation-only by default (a B2B product): owners invite by e-mail (accounts/invitations.py). Open sign-up, when an
# operator turns it on, makes e-mail verification mandatory: that is what lets allauth answer a sign-up with a taken
# address exactly like a new one, so the form never tells whether an address is registered.
BASTION_OPEN_SIGNUP = env.bool("BASTION_OPEN_SIGNUP", default=False)
BASTION_INVITATION_DAYS = env.int("BASTION_INVITATION_DAYS", default=7)
ACCOUNT_EMAIL_VERIFICATION = "mandatory" if BASTION_OPEN_SIGNUP else "none"
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
# Failed sign-ins lock the account (key: the account, however it is named) after 5 in 5 minutes, from any address; an
# address is locked only after many more, so one person's typos never lock out everyone behind the same proxy.
ACCOUNT_RATE_LIMITS = {
    "login_failed": env.str("BASTION_LOGIN_FAILED_RATE", default="30/5m/ip,5/5m/key"),
    "login": "30/m/ip",
    "signup": "10/m/ip",
    "reset_password": "10/m/ip,3/m/key",
    "reset_password_from_key": "20/m/ip",
}
# How many reverse proxies in front of Bastion append to X-Forwarded-For (0: the header is ignored, REMOTE_ADDR is the
# client). Used by the sign-in lockout, the throttles and the audit trail (common/client_address.py).
BASTION_TRUSTED_PROXY_COUNT = env.int("BASTION_TRUSTED_PROXY_COUNT", default=0)
# Form posts to pages, per signed-in user or client address (the API has BASTION_API_RATE).
BASTION_PAGE_RATE = env.str("BASTION_PAGE_RATE", default="120/minute")
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(BASE_DIR / "media"))

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=1025)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="bastion@localhost")

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("BASTION_MAX_BODY_BYTES", default=5 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
BASTION_MAX_UPLOAD_BYTES = env.int("BASTION_MAX_UPLOAD_BYTES", default=512 * 1024 * 1024)
BASTION_WEBHOOK_MAX_BYTES = env.int("BASTION_WEBHOOK_MAX_BYTES", default=1024 * 1024)
# Outbound base URLs on loopback/private ranges are refused unless an operator allows them.
BASTION_ALLOW_PRIVATE_BASE_URLS = env.bool("BASTION_ALLOW_PRIVATE_BASE_URLS", default=not IS_PRODUCTION)
BASTION_SANDBOX_URL = env.str("BASTION_SANDBOX_URL", default="http://127.0.0.1:8765")
# Stand-ins that talk only to the vendor sandbox (Demo Workspace, Sandbox Directory, Sandbox actions) are in the connector
# catalogue everywhere but on a production-configured server (BASTION_ENV=production), unless this turns them on there.
BASTION_SANDBOX_CONNECTORS = env.bool("BASTION_SANDBOX_CONNECTORS", default=not IS_PRODUCTION)
BASTION_PUBLIC_URL = env.str("BASTION_PUBLIC_URL", default="http://127.0.0.1:8000")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "common.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "common.openapi_summary.SummaryAutoSchema",  # every operation gets a one-line summary
    "EXCEPTION_HANDLER": "common.errors.api_exception_handler",
    # JSON through common.json_input: nesting bounded, NUL refused (400), for every view that does not name its parsers.
    "DEFAULT_PARSER_CLASSES": ["common.parsers.JSONParser", "common.parsers.FormParser", "common.parsers.MultiPartParser"],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env.str("BASTION_API_RATE", default="2000/minute")},
    # Anonymous throttling keys by REMOTE_ADDR unless proxies are trusted (DRF reads the whole X-Forwarded-For otherwise).
    "NUM_PROXIES": BASTION_TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Bastion Data Integration Layer API",
    "DESCRIPTION": "Connect company systems to Bastion scenarios and playbooks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {},
    # Swagger UI assets are served locally: nothing may be fetched from a CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every operation documents the error statuses it can answer (common/openapi.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "common.openapi.document_error_responses"],
}

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if IS_PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 31536000
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Production logs one JSON object per line (with the trace id when tracing is on); LOG_FORMAT=plain|json overrides.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if IS_PRODUCTION else "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}, "json": {"()": "common.log_format.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
# Celery workers keep Django's handlers (and so the JSON lines) instead of installing their own format on the root logger.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"

# Dotted paths called as handler(integration_id: str, events: list[dict]) after webhook deliveries are
# processed by the sync engine, so higher layers (playbooks) react without sync importing them.
BASTION_EVENT_HANDLERS = env.list(
    "BASTION_EVENT_HANDLERS", default=["playbooks.services.webhook_events_apply", "playbooks.triggers.services.trigger_events_evaluate"]
)
# Human steps: how long an approval or task link stays valid, and how late a step may be before the stall check raises it.
BASTION_APPROVAL_LINK_HOURS = env.float("BASTION_APPROVAL_LINK_HOURS", default=72)
BASTION_HUMAN_STEP_STALL_GRACE_SECONDS = env.float("BASTION_HUMAN_STEP_STALL_GRACE_SECONDS", default=600)
# OAuth client registrations per connector key: {"jira": {"client_id": "...", "client_secret": "..."}}.
BASTION_OAUTH_CLIENTS = env.json("BASTION_OAUTH_CLIENTS", default={})
# Name shared choice sets once in the OpenAPI schema (integration status vs. job status; roles in allowed_roles).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {"IntegrationStatusEnum": "integrations.models.IntegrationStatus", "JobStatusEnum": "sync.models.JobStatus", "RoleEnum": "accounts.models.Role"}
)

# Sync engine (sync/): engine retries and backoff, heartbeat timeout for the reaper, per-organization fairness,
# default schedule, and the webhook flood guard (deliveries per second per integration before 429).
BASTION_SYNC_MAX_ATTEMPTS = env.int("BASTION_SYNC_MAX_ATTEMPTS", default=5)
BASTION_SYNC_RETRY_BASE_SECONDS = env.float("BASTION_SYNC_RETRY_BASE_SECONDS", default=5.0)
BASTION_SYNC_HEARTBEAT_TIMEOUT = env.int("BASTION_SYNC_HEARTBEAT_TIMEOUT", default=120)
BASTION_SYNC_MAX_CONCURRENT_PER_ORG = env.int("BASTION_SYNC_MAX_CONCURRENT_PER_ORG", default=2)
BASTION_SYNC_DEFAULT_INTERVAL = env.int("BASTION_SYNC_DEFAULT_INTERVAL", default=900)
# The sync dispatcher (beat, every 10 s): at most this many due sources started per tick, sent in messages of CHUNK sources.
BASTION_SYNC_DISPATCH_BATCH = env.int("BASTION_SYNC_DISPATCH_BATCH", default=5000)
BASTION_SYNC_DISPATCH_CHUNK = env.int("BASTION_SYNC_DISPATCH_CHUNK", default=50)
# Backpressure (sync.services.backpressure, docs/operations.md): the dispatcher keeps the syncs in flight under AHEAD_SECONDS
# of work at the measured completion rate (at least MIN_IN_FLIGHT; at most MAX_IN_FLIGHT_PER_ORG of one organization); the
# due sources it holds back keep their next_sync_at and go first next tick. Off: every due source is sent at once.
BASTION_SYNC_DISPATCH_BACKPRESSURE = env.bool("BASTION_SYNC_DISPATCH_BACKPRESSURE", default=True)
BASTION_SYNC_DISPATCH_AHEAD_SECONDS = env.float("BASTION_SYNC_DISPATCH_AHEAD_SECONDS", default=20.0)
BASTION_SYNC_DISPATCH_MIN_IN_FLIGHT = env.int("BASTION_SYNC_DISPATCH_MIN_IN_FLIGHT", default=100)
BASTION_SYNC_DISPATCH_MAX_IN_FLIGHT_PER_ORG = env.int("BASTION_SYNC_DISPATCH_MAX_IN_FLIGHT_PER_ORG", default=20)
# A connector whose paging lives in its worker process (LDAP) has a run's pages read by one task for up to this long.
BASTION_SYNC_PROCESS_BOUND_PAGE_BUDGET_SECONDS = env.float("BASTION_SYNC_PROCESS_BOUND_PAGE_BUDGET_SECONDS", default=30.0)
# The HTTP client's own retries per call while a sync reads (the engine re-queues a failed page itself, with a countdown).
BASTION_SYNC_HTTP_RETRIES = env.int("BASTION_SYNC_HTTP_RETRIES", default=4)
BASTION_SYNC_HTTP_BACKOFF = env.float("BASTION_SYNC_HTTP_BACKOFF", default=0.5)
BASTION_CSV_IMPORT_BATCH_SIZE = env.int("BASTION_CSV_IMPORT_BATCH_SIZE", default=10_000)  # rows per transaction of a CSV import
BASTION_PLAYBOOK_STEP_LEASE_SECONDS = env.float("BASTION_PLAYBOOK_STEP_LEASE_SECONDS", default=30.0)  # a claimed step without heartbeat
BASTION_PLAYBOOK_RETRY_BASE_SECONDS = env.float("BASTION_PLAYBOOK_RETRY_BASE_SECONDS", default=1.0)  # a failed step's first retry delay
BASTION_METRICS_QUEUES = env.list("BASTION_METRICS_QUEUES", default=[])  # Celery queues besides the default whose length /metrics reports
BASTION_WEBHOOK_MAX_PER_SECOND = env.int("BASTION_WEBHOOK_MAX_PER_SECOND", default=500)
# How long a web process keeps an integration's webhook route and verification key (dropped at once where they change).
BASTION_WEBHOOK_ROUTE_TTL_SECONDS = env.float("BASTION_WEBHOOK_ROUTE_TTL_SECONDS", default=5.0)
BASTION_SYNC_READ_AHEAD = env.bool("BASTION_SYNC_READ_AHEAD", default=False)  # read an LDAP sync's next page while writing (sync.services.read_ahead)
BASTION_CSV_UPLOAD_GRACE_HOURS = env.float("BASTION_CSV_UPLOAD_GRACE_HOURS", default=24.0)  # an upload no import used is deleted after this
BASTION_PLAYBOOK_POLL_MIN_INTERVAL_SECONDS = env.int("BASTION_PLAYBOOK_POLL_MIN_INTERVAL_SECONDS", default=60)
BASTION_PLAYBOOK_POLL_HORIZON_DAYS = env.int("BASTION_PLAYBOOK_POLL_HORIZON_DAYS", default=30)  # objects of older runs are not polled
BASTION_PLAYBOOK_POLL_MEETING_GRACE_SECONDS = env.int("BASTION_PLAYBOOK_POLL_MEETING_GRACE_SECONDS", default=3600)  # after a meeting ends

# Observability (docs/operations.md). /metrics answers a scraper presenting this bearer token, or a signed-in staff user;
# with no token set only staff can read it. Per-data-source freshness series can be turned off where sources number in
# the tens of thousands (the per-connector counts stay). Traces are exported over OTLP/HTTP when an endpoint is set here
# or in OTEL_EXPORTER_OTLP_ENDPOINT; off otherwise.
BASTION_METRICS_TOKEN = env.str("BASTION_METRICS_TOKEN", default="")
BASTION_METRICS_PER_SOURCE = env.bool("BASTION_METRICS_PER_SOURCE", default=True)
BASTION_OTEL_ENDPOINT = env.str("BASTION_OTEL_ENDPOINT", default="")
# Freshness target of a data source without an interval schedule (crontab): by default two default intervals.
BASTION_SYNC_FRESHNESS_TARGET_SECONDS = env.int("BASTION_SYNC_FRESHNESS_TARGET_SECONDS", default=2 * BASTION_SYNC_DEFAULT_INTERVAL)
