"""The back office: pages for people (brands, retailers, admins) under `/admin/`, beside the edge API.

It lives apart from `edge_api/` so the latency-critical edge stays small; the same app
mounts its routes (`backoffice.routes.routes`). Sessions live in Redis, people, campaign
versions and API tokens in PostgreSQL (migration 0004).
"""
