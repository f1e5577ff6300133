"""Oversight (giám sát): read models of every case for HĐND, MTTQ and the 1022 centre, the public
status lookup, and the hash-chained audit log. Read-only to the world."""
