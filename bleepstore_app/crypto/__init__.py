"""Server-side encryption: the key ring (keys.py) and the chunked AEAD blob format
(stream.py).

Every encrypted object has a 32-byte *object key*: a random data key, stored only
wrapped by a master key (SSE-S3) or a named key-ring key (SSE-KMS), or the
customer's own key, never stored (SSE-C). Each blob of the object (its single
blob, or each part) derives its own AES-256-GCM key from the object key and a
random salt in the blob's header, so no two blobs ever share a key and nonce.

What it may import: ``storage.base`` (the reader interface) and the
``cryptography`` package; never Flask, the service, the database or S3 errors.
"""
