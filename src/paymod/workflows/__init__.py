"""Flows: the durable step engine (`engine`, `store`) and the multi-step flows named after Medusa's
workflows (`payment_collection`, `payment`). Import the submodules; this package imports nothing, so
the service layer can use the engine without a cycle.
"""
