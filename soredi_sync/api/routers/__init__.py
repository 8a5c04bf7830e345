"""The endpoints, one module per resource, each with its request and response models beside
them: ``routing``, ``registry`` (units, GLNs, the change feed, snapshots), ``health`` (probes and
metrics), ``audit`` (audit, adoption, cut-over), ``plans`` and ``webhooks``.

A router parses the request, calls a use case in ``soredi_sync.services`` and maps the answer
to its models; :func:`soredi_sync.api.create_app` includes them all.
"""
