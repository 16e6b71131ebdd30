"""Signing keys: their material (``crypto``), queries (``repository``), rotation rules
(``rotation``) and the in-process JWKS source auth verifies its own tokens with
(``transport``)."""
