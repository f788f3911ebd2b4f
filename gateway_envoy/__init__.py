"""The edge: Envoy translating the browser's gRPC-web into gRPC (see config.py)."""
