"""The admin web console: Django admin made into an operator's tool for the voiceprint service."""
