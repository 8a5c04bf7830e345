"""SOAP clients for the national service platform (NSP): SORLS lookup and SKRS replication.

The WSDL/XSD under ``contracts/`` are modelled on the published descriptions (the official
ones are not public); :mod:`soredi_sync.soap.mapping` is the one module that knows their
element names, so the real contracts replace them with a change there and in the settings.
"""

from __future__ import annotations
