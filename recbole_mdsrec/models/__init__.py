"""Plugin models. Each is registered by name in ``recbole_mdsrec/registry.py``."""
