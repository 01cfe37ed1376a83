"""Bucket policies: the document (parse and validate) and its evaluation.

Pure functions over plain values: no Flask, no database, no storage. The wire
(s3/authorize.py) builds a ``Request`` from the HTTP request and asks
``evaluate`` for "Deny", "Allow" or None (the policy says nothing); the service
layer (service/policy.py) stores documents that ``parse`` accepted.
The AWS IAM User Guide ("Policy evaluation logic", "IAM JSON policy elements")
is the reference.
"""
from .document import Policy, PolicyError, Statement, parse
from .evaluate import Request, evaluate, is_public

__all__ = ["Policy", "PolicyError", "Statement", "parse", "Request", "evaluate", "is_public"]
