"""General tools that know nothing of this project's records or rules (stdlib only, no
Django), importable from anywhere (`config/`, `engine/`, the apps):
`url_fetch`, the SSRF-safe HTTP(S) fetcher; `env`, the typed environment variables."""
