"""The durable pipeline: ingest -> work items -> triage -> plan -> outbox -> dispatcher."""
