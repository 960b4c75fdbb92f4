"""The REST API v2 (Dagu's contract: ../shared/reference/dagu-api-v2.yaml)."""
