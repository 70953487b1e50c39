from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and audit"

    def ready(self) -> None:
        from accounts import receivers  # noqa: F401  (sign-in auditing hooks into allauth/Django auth)
