"""General tools that know nothing of this project's records or rules (stdlib only):
`url_fetch`, the SSRF-safe HTTP(S) fetcher."""
