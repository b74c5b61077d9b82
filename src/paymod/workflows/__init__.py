"""Flows: the durable step engine (`engine`, `store`), the reconciler (`reconciler`) and the
multi-step flows named after Medusa's workflows (`payment_collection`). Import the submodules; this
package imports nothing, so the service layer can use the engine without a cycle.
"""
