"""Ports: what the services need from storage, as plain records and Protocols.

``records`` holds the values repositories return, ``storage`` the repository and
unit-of-work Protocols, ``fakes`` their in-memory twins for fast tests.
"""
