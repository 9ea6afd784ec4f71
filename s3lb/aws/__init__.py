"""Thin AWS clients over httpx, signed with botocore; the sans-IO notification decoder."""
