"""Flows above the module (as Medusa's workflows): the multi-step flows named after Medusa's
(`payment_collection`) and the reconciler that finishes runs left in an unknown state (`reconciler`)."""
