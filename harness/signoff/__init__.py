"""Reviewer sign-off of validation reports: Ed25519 signatures in a hash-chained ledger.

A RESTORE decision is only as trustworthy as the people who signed it off. The package sits
above the report: it reads a validation's manifest and report, and re-renders the report's
sign-off section; the report never imports it.

- :mod:`harness.signoff.keys`: the reviewers file (pinned public keys), ``keygen``, private keys;
- :mod:`harness.signoff.policy`: which roles must approve, the sign-off rules, approvals;
- :mod:`harness.signoff.ledger`: signing, appending under a lock, and verifying the ledger.
"""
