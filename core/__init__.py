"""The platform core: what every app stands on and no app owns. For now, the start-up
checks of the settings (`core/checks.py`), wired in `core/apps.py`."""
