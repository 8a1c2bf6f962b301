"""The local workspace service: a faithful Studio (classic) workspace on loopback.

Nothing in this package imports from the client side of amlvc.
"""
