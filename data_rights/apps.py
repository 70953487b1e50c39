from django.apps import AppConfig


class DataRightsConfig(AppConfig):
    name = "data_rights"
    verbose_name = "Data rights (GDPR / CCPA)"
