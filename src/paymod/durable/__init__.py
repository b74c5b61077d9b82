"""Durable flows: the step engine (`engine`) and where its runs live (`store`).

Below the service layer: the services build their money flows on it, and nothing here imports them.
"""
